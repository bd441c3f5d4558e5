//! Multipart uploads, in the metadata index: `Uploads` (bucket, key, upload id -> the
//! upload's record) and `Parts` (bucket, upload id, part number -> the part's record).
//! Part bytes are ordinary shard files, registered in `Data` while their upload holds
//! them, so completing an upload writes only metadata: the object's parts are the
//! uploaded shard files themselves, and the completion's one index commit adds the
//! version and removes the upload.
//!
//! Writers of one upload (its parts, its completion, its abort) serialise on the upload's
//! stripe, so a part never lands in an upload that is being completed or aborted.

use crate::checksum::{self, Checksum, ChecksumAlgorithm, ChecksumType};
use crate::error::{Error, Result};
use crate::fsio::blocking;
use crate::index::{Batch, Table, keys};
use crate::meta::{ObjectAttrs, ObjectMeta, PartMeta};
use crate::names::{BucketName, ObjectKey, PartNumber, UploadId};
use crate::object::{StagedData, WriteCondition};
use crate::store::{Bucket, Inner, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::SystemTime;

/// Smallest size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// An in-progress upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    pub upload_id: String,
    pub key: String,
    pub initiated: SystemTime,
    pub attrs: ObjectAttrs,
    /// The checksum the parts carry, and how they combine into the object's.
    pub checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
}

/// A part as uploaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub part: PartMeta,
    pub last_modified: SystemTime,
}

/// A part named by CompleteMultipartUpload.
#[derive(Clone, Debug)]
pub struct CompletedPart {
    pub number: i64,
    pub etag: String,
    /// The part checksum the client lists, checked against the stored one.
    pub checksum: Option<String>,
}

/// What ListMultipartUploads asks for: uploads of keys starting with `prefix`, after
/// `key_marker` (and, within that key, after `upload_id_marker`), keys holding
/// `delimiter` after the prefix rolled up into common prefixes, `max` entries in all.
#[derive(Clone, Debug, Default)]
pub struct UploadQuery<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub key_marker: &'a str,
    pub upload_id_marker: &'a str,
    pub max: usize,
}

/// One page of ListMultipartUploads: uploads by key, then by upload id (which sorts by
/// initiation time), and the common prefixes among them.
#[derive(Clone, Debug, Default)]
pub struct UploadPage {
    pub uploads: Vec<UploadInfo>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// When truncated: the key (or common prefix) and upload id (empty after a common
    /// prefix) to resume after.
    pub next: Option<(String, String)>,
}

/// The rows of an upload's record.
pub(crate) fn upload_rows(batch: &mut Batch, bucket: &str, u: &UploadInfo) {
    batch.put(
        Table::Uploads,
        keys::upload(bucket, &u.key, &u.upload_id),
        &serde_json::to_vec(u).expect("serialises"),
    );
}

/// The rows of a part's record: the part and its shard file's `Data` registration.
pub(crate) fn part_rows(batch: &mut Batch, bucket: &str, upload_id: &str, p: &PartRecord) {
    batch.put(
        Table::Parts,
        keys::part(bucket, upload_id, p.part.number),
        &serde_json::to_vec(p).expect("serialises"),
    );
    if let Some(d) = &p.part.data_id {
        batch.put(Table::Data, keys::data(bucket, d), &[]);
    }
}

/// The rows that remove an upload: its record and its parts; the `Data` rows of the parts
/// in `parts` too (parts an object keeps are left out by the caller).
fn removal(bucket: &str, u: &UploadInfo, parts: &[&PartRecord]) -> Batch {
    let mut batch = Batch::new();
    batch.delete(Table::Uploads, keys::upload(bucket, &u.key, &u.upload_id));
    let p = keys::parts_of(bucket, &u.upload_id);
    let end = keys::prefix_end(&p);
    batch.delete_range(Table::Parts, p, end);
    for part in parts {
        if let Some(d) = &part.part.data_id {
            batch.delete(Table::Data, keys::data(bucket, d));
        }
    }
    batch
}

fn corrupt(what: &str, bucket: &str) -> Error {
    Error::Corrupt {
        path: format!("buckets/{bucket}/uploads").into(),
        reason: format!("unreadable {what}"),
    }
}

impl Store {
    /// Start an upload of `key`.
    pub async fn create_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        attrs: ObjectAttrs,
        checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
    ) -> Result<UploadInfo> {
        let b = self.bucket(bucket)?;
        if let Some((a, ChecksumType::FullObject)) = checksum
            && !a.is_crc()
        {
            return Err(Error::InvalidArgument(format!("{} cannot be a full-object checksum", a.as_str())));
        }
        let info = UploadInfo {
            upload_id: UploadId::generate().as_str().to_owned(),
            key: key.to_string(),
            initiated: SystemTime::now(),
            attrs,
            checksum,
        };
        let _guard = b.upload_stripe(&info.upload_id).lock().await;
        b.check_live()?;
        let mut batch = Batch::new();
        upload_rows(&mut batch, &b.name, &info);
        self.inner.commit(batch).await?;
        Ok(info)
    }

    /// The upload `id` of `key`, or `NoSuchUpload`.
    pub async fn upload_info(&self, bucket: &BucketName, key: &ObjectKey, id: &str) -> Result<UploadInfo> {
        let b = self.bucket(bucket)?;
        load_upload(&self.inner, &b, key, id).await
    }

    /// Store staged data as part `number` of an upload, replacing an earlier upload of it.
    pub async fn commit_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &str,
        number: PartNumber,
        staged: StagedData,
    ) -> Result<PartRecord> {
        let b = self.bucket(bucket)?;
        let mut staged = staged;
        let data_id = staged.take_data_file().await?;
        let rec = PartRecord {
            part: PartMeta {
                number: number.get(),
                size: staged.size(),
                etag: staged.etag(),
                checksum: staged.checksum().cloned(),
                data_id: Some(data_id.clone()),
            },
            last_modified: SystemTime::now(),
        };
        let guard = b.upload_stripe(id).lock().await;
        let mut attempted = false;
        let committed = async {
            b.check_live()?;
            let info = load_upload(&self.inner, &b, key, id).await?;
            let replaced = read_part(&self.inner, &b, &info.upload_id, number.get()).await?;
            let mut batch = Batch::new();
            part_rows(&mut batch, &b.name, &info.upload_id, &rec);
            let old = replaced.and_then(|o| o.part.data_id).filter(|old| *old != data_id);
            if let Some(old) = &old {
                batch.delete(Table::Data, keys::data(&b.name, old));
            }
            attempted = true;
            self.inner.commit(batch).await?;
            Ok::<_, Error>(old)
        }
        .await;
        drop(guard);
        match committed {
            Ok(old) => {
                if let Some(old) = old {
                    b.remove_data(&old);
                }
                Ok(rec)
            }
            Err(e) => {
                // A commit that failed may still have taken effect (see `commit_meta`):
                // then the part needs its data, and the sweep keeps it; otherwise it
                // removes it at the next start.
                if attempted {
                    tracing::warn!(bucket = %b.name, upload = id, error = %e, "part commit failed; its shard file stays for the orphan sweep");
                } else {
                    b.remove_data(&data_id);
                }
                Err(e)
            }
        }
    }

    /// Every part uploaded so far, by number.
    pub async fn list_parts(&self, bucket: &BucketName, key: &ObjectKey, id: &str) -> Result<(UploadInfo, Vec<PartRecord>)> {
        let b = self.bucket(bucket)?;
        let info = load_upload(&self.inner, &b, key, id).await?;
        let parts = read_parts(&self.inner, &b, &info.upload_id).await?;
        Ok((info, parts.into_values().collect()))
    }

    /// Assemble the listed parts into the object at `key`.
    pub async fn complete_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &str,
        listed: &[CompletedPart],
        cond: &WriteCondition,
    ) -> Result<Arc<ObjectMeta>> {
        self.complete_upload_checked(bucket, key, id, listed, cond, &[]).await
    }

    /// [`Store::complete_upload`], also checking the whole object's full-object checksum
    /// against `expected` (algorithm, base64 value) before it becomes visible.
    pub async fn complete_upload_checked(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &str,
        listed: &[CompletedPart],
        cond: &WriteCondition,
        expected: &[(crate::ChecksumAlgorithm, String)],
    ) -> Result<Arc<ObjectMeta>> {
        let b = self.bucket(bucket)?;
        let _guard = b.upload_stripe(id).lock().await;
        let info = load_upload(&self.inner, &b, key, id).await?;
        let mut stored = read_parts(&self.inner, &b, &info.upload_id).await?;
        if listed.is_empty() {
            return Err(Error::InvalidArgument("the upload must list at least one part".into()));
        }
        let mut last = 0u32;
        for want in listed {
            let n = PartNumber::new(want.number)?.get();
            if n <= last {
                return Err(Error::InvalidPartOrder);
            }
            last = n;
        }
        let mut parts: Vec<PartMeta> = Vec::with_capacity(listed.len());
        for want in listed {
            let n = want.number as u32;
            let have = stored.remove(&n).ok_or(Error::InvalidPart(n))?;
            if want.etag.trim().trim_matches('"') != have.part.etag {
                return Err(Error::InvalidPart(n));
            }
            if let (Some(sent), Some(c)) = (&want.checksum, &have.part.checksum)
                && sent.trim() != c.value
            {
                return Err(Error::InvalidPart(n));
            }
            parts.push(have.part);
        }
        if let Some((n, p)) = parts[..parts.len() - 1]
            .iter()
            .map(|p| (p.number, p))
            .find(|(_, p)| p.size < MIN_PART_SIZE)
        {
            return Err(Error::EntityTooSmall { part: n, size: p.size });
        }
        let etags: Vec<&str> = parts.iter().map(|p| p.etag.as_str()).collect();
        let etag = checksum::multipart_etag(&etags)?;
        let object_checksum = match info.checksum {
            Some((a, kind)) => {
                let cs: Option<Vec<(&Checksum, u64)>> = parts
                    .iter()
                    .map(|p| p.checksum.as_ref().filter(|c| c.algorithm == a).map(|c| (c, p.size)))
                    .collect();
                match cs {
                    Some(cs) => Some(checksum::combine_parts(a, kind, &cs)?),
                    None => None,
                }
            }
            None => None,
        };
        // A whole-object checksum the client names is checked, never ignored: against the
        // full-object or composite checksum the parts make; one of another algorithm than
        // the upload's cannot be checked and is refused.
        for (a, v) in expected {
            match object_checksum.as_ref().filter(|c| c.algorithm == *a) {
                Some(c) => c.verify(v)?,
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "the upload was not created with the {} checksum algorithm",
                        a.as_str()
                    )));
                }
            }
        }
        let meta = ObjectMeta {
            version_id: None,
            size: parts.iter().map(|p| p.size).sum(),
            etag,
            last_modified: SystemTime::now(),
            attrs: info.attrs.clone(),
            checksum: object_checksum,
            multipart: true,
            parts,
            inline_at: None,
            delete_marker: false,
            upload_id: Some(info.upload_id.clone()),
            order: 0,
        };
        // One commit adds the version (its parts' data now belongs to it) and removes the
        // upload with the parts it left out; on failure all still belongs to the upload.
        let unused: Vec<&PartRecord> = stored.values().collect();
        let also = removal(&b.name, &info, &unused);
        let committed = self
            .commit_meta(&b, key, meta, bytes::Bytes::new(), cond, crate::object::DataFrom::Upload(also))
            .await?;
        for rest in stored.into_values() {
            if let Some(d) = rest.part.data_id {
                b.remove_data(&d);
            }
        }
        Ok(committed)
    }

    /// Abort an upload and delete its parts.
    pub async fn abort_upload(&self, bucket: &BucketName, key: &ObjectKey, id: &str) -> Result<()> {
        let b = self.bucket(bucket)?;
        let _guard = b.upload_stripe(id).lock().await;
        let info = load_upload(&self.inner, &b, key, id).await?;
        let parts = read_parts(&self.inner, &b, &info.upload_id).await?;
        let all: Vec<&PartRecord> = parts.values().collect();
        self.inner.commit(removal(&b.name, &info, &all)).await?;
        for p in parts.into_values() {
            if let Some(d) = p.part.data_id {
                b.remove_data(&d);
            }
        }
        Ok(())
    }

    /// One page of the bucket's in-progress uploads (ListMultipartUploads), from the
    /// index: a common prefix is skipped over with one seek, never visited upload by upload.
    pub async fn list_uploads(&self, bucket: &BucketName, query: &UploadQuery<'_>) -> Result<UploadPage> {
        let b = self.bucket(bucket)?;
        let inner = self.inner.clone();
        let q = OwnedQuery {
            prefix: query.prefix.to_owned(),
            delimiter: query.delimiter.filter(|d| !d.is_empty()).map(str::to_owned),
            key_marker: query.key_marker.to_owned(),
            upload_id_marker: query.upload_id_marker.to_owned(),
            max: query.max,
        };
        blocking(move || inner.index.read(|ix| list_page(ix, &b.name, &q))).await
    }
}

struct OwnedQuery {
    prefix: String,
    delimiter: Option<String>,
    key_marker: String,
    upload_id_marker: String,
    max: usize,
}

fn list_page(ix: &crate::index::Index, bucket: &str, q: &OwnedQuery) -> Result<UploadPage> {
    let floor = keys::escaped_prefix(bucket, &q.prefix);
    let end = keys::prefix_end(&floor);
    // Where the page starts: after the markers, never before the prefix.
    let mut from: (Vec<u8>, bool) = match (q.key_marker.is_empty(), q.upload_id_marker.is_empty()) {
        (true, _) => (floor.clone(), true),
        (false, false) => (keys::upload(bucket, &q.key_marker, &q.upload_id_marker), false),
        (false, true) => (keys::prefix_end(&keys::object(bucket, &q.key_marker)), true),
    };
    if from.0 < floor {
        from = (floor.clone(), true);
    }
    let mut page = UploadPage::default();
    if from.0 >= end {
        return Ok(page);
    }
    loop {
        // Set when the scan stops at a common prefix: where the next scan starts.
        let mut seek: Option<Vec<u8>> = None;
        let lower = if from.1 {
            Bound::Included(&from.0[..])
        } else {
            Bound::Excluded(&from.0[..])
        };
        ix.scan(Table::Uploads, lower, Bound::Excluded(&end[..]), |k, v| {
            let (key, _) = keys::parse_upload(bucket, k).ok_or_else(|| corrupt("upload key", bucket))?;
            let cp = q.delimiter.as_deref().and_then(|d| {
                key[q.prefix.len()..]
                    .find(d)
                    .map(|i| key[..q.prefix.len() + i + d.len()].to_owned())
            });
            if let Some(cp) = cp {
                // Past the whole prefix, whether it is listed or was on an earlier page
                // (the marker falls inside it).
                seek = Some(keys::prefix_end(&keys::escaped_prefix(bucket, &cp)));
                if cp.as_str() > q.key_marker.as_str() {
                    if page.uploads.len() + page.prefixes.len() == q.max {
                        page.truncated = true;
                    } else {
                        page.next = Some((cp.clone(), String::new()));
                        page.prefixes.push(cp);
                    }
                }
                return Ok(false);
            }
            if page.uploads.len() + page.prefixes.len() == q.max {
                page.truncated = true;
                return Ok(false);
            }
            let u: UploadInfo = serde_json::from_slice(v).map_err(|_| corrupt("upload record", bucket))?;
            page.next = Some((u.key.clone(), u.upload_id.clone()));
            page.uploads.push(u);
            Ok(true)
        })?;
        match seek {
            Some(s) if !page.truncated && s < end => from = (s, true),
            _ => break,
        }
    }
    if !page.truncated {
        page.next = None;
    }
    Ok(page)
}

async fn load_upload(inner: &Arc<Inner>, b: &Arc<Bucket>, key: &ObjectKey, id: &str) -> Result<UploadInfo> {
    let id = UploadId::parse(id)?;
    let k = keys::upload(&b.name, key.as_str(), id.as_str());
    let (i2, name) = (inner.clone(), b.name.clone());
    let raw = blocking(move || i2.index.read(|ix| ix.get(Table::Uploads, &k))).await?;
    let raw = raw.ok_or_else(|| Error::NoSuchUpload(id.as_str().to_owned()))?;
    serde_json::from_slice(&raw).map_err(|_| corrupt("upload record", &name))
}

async fn read_part(inner: &Arc<Inner>, b: &Arc<Bucket>, id: &str, number: u32) -> Result<Option<PartRecord>> {
    let k = keys::part(&b.name, id, number);
    let (i2, name) = (inner.clone(), b.name.clone());
    let raw = blocking(move || i2.index.read(|ix| ix.get(Table::Parts, &k))).await?;
    raw.map(|v| serde_json::from_slice(&v).map_err(|_| corrupt("part record", &name)))
        .transpose()
}

/// Every part record of upload `id`, by number.
async fn read_parts(inner: &Arc<Inner>, b: &Arc<Bucket>, id: &str) -> Result<BTreeMap<u32, PartRecord>> {
    let p = keys::parts_of(&b.name, id);
    let (i2, name) = (inner.clone(), b.name.clone());
    let rows = blocking(move || i2.index.read(|ix| ix.scan_prefix(Table::Parts, &p, usize::MAX))).await?;
    let mut out = BTreeMap::new();
    for (_, v) in rows {
        let rec: PartRecord = serde_json::from_slice(&v).map_err(|_| corrupt("part record", &name))?;
        out.insert(rec.part.number, rec);
    }
    Ok(out)
}
