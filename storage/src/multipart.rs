//! Multipart uploads. Each upload is a directory `uploads/<id>/` on every drive with
//! `upload.json` and one `part.<n>` record per uploaded part; part bytes are ordinary shard
//! files, so completing an upload writes only metadata: the object's parts are the uploaded
//! shard files themselves. Records are read from every drive and merged, so a drive that
//! missed a write does not hide a part.

use crate::checksum::{self, Checksum, ChecksumAlgorithm, ChecksumType};
use crate::error::{Error, IoContext, Result};
use crate::fsio::{self, blocking};
use crate::meta::{ObjectAttrs, ObjectMeta, PartMeta};
use crate::names::{BucketName, ObjectKey, PartNumber, UploadId};
use crate::object::{StagedData, WriteCondition};
use crate::store::{Bucket, Inner, Store, SyncMode, read_dir_paths};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
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

fn part_file(n: u32) -> String {
    format!("part.{n:05}")
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
        let bytes = Arc::new(serde_json::to_vec(&info).expect("serialises"));
        let (inner, b2, id) = (self.inner.clone(), b.clone(), info.upload_id.clone());
        let durable = self.inner.opts.fsync;
        let results = self
            .inner
            .on_drives(move |d| {
                let dir = b2.uploads_dir(d).join(&id);
                fs::create_dir(&dir).ctx("mkdir", &dir)?;
                fsio::write_atomic(&inner.drives[d].tmp, &dir.join("upload.json"), &bytes, durable)?;
                if durable {
                    fsio::sync_dir(&b2.uploads_dir(d))?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = self.inner.quorum("create upload", &results, self.inner.write_quorum()) {
            remove_upload_dirs(&self.inner, &b, &info.upload_id).await;
            return Err(e);
        }
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
        let info = load_upload(&self.inner, &b, key, id).await?;
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
        let bytes = serde_json::to_vec(&rec).expect("serialises");
        let lock_name = format!("{}/{}", info.upload_id, number.get());
        let _guard = b.stripe(&lock_name).lock().await;
        let (i2, b2, up) = (self.inner.clone(), b.clone(), info.upload_id.clone());
        let replaced = blocking(move || Ok(read_parts(&i2, &b2, &up)?.remove(&number.get()))).await?;
        let rel = Path::new("uploads").join(&info.upload_id).join(part_file(number.get()));
        if let Err(e) = self.inner.write_everywhere(&b, rel, bytes, SyncMode::File).await {
            b.remove_data(&data_id);
            // An upload aborted meanwhile is the likelier cause.
            return match load_upload(&self.inner, &b, key, id).await {
                Err(Error::NoSuchUpload(_)) => Err(Error::NoSuchUpload(id.to_owned())),
                _ => Err(e),
            };
        }
        if let Some(old) = replaced.and_then(|o| o.part.data_id)
            && old != data_id
        {
            b.remove_data(&old);
        }
        Ok(rec)
    }

    /// Every part uploaded so far, by number.
    pub async fn list_parts(&self, bucket: &BucketName, key: &ObjectKey, id: &str) -> Result<(UploadInfo, Vec<PartRecord>)> {
        let b = self.bucket(bucket)?;
        let info = load_upload(&self.inner, &b, key, id).await?;
        let (i2, b2, up) = (self.inner.clone(), b.clone(), info.upload_id.clone());
        let parts = blocking(move || read_parts(&i2, &b2, &up)).await?;
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
        let info = load_upload(&self.inner, &b, key, id).await?;
        let (i2, b2, up) = (self.inner.clone(), b.clone(), info.upload_id.clone());
        let mut stored = blocking(move || read_parts(&i2, &b2, &up)).await?;
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
        // The parts' data now belongs to the object (or, on failure, still to the upload).
        let committed = self.commit_meta(&b, key, meta, bytes::Bytes::new(), cond, false).await?;
        for rest in stored.into_values() {
            if let Some(d) = rest.part.data_id {
                b.remove_data(&d);
            }
        }
        remove_upload_dirs(&self.inner, &b, &info.upload_id).await;
        Ok(committed)
    }

    /// Abort an upload and delete its parts.
    pub async fn abort_upload(&self, bucket: &BucketName, key: &ObjectKey, id: &str) -> Result<()> {
        let b = self.bucket(bucket)?;
        let info = load_upload(&self.inner, &b, key, id).await?;
        let (i2, b2, up) = (self.inner.clone(), b.clone(), info.upload_id.clone());
        let parts = blocking(move || read_parts(&i2, &b2, &up)).await?;
        remove_upload_dirs(&self.inner, &b, &info.upload_id).await;
        for p in parts.into_values() {
            if let Some(d) = p.part.data_id {
                b.remove_data(&d);
            }
        }
        Ok(())
    }

    /// Every in-progress upload of the bucket, ordered by key, then initiation time.
    pub async fn list_uploads(&self, bucket: &BucketName) -> Result<Vec<UploadInfo>> {
        let b = self.bucket(bucket)?;
        let inner = self.inner.clone();
        let mut all = blocking(move || {
            let mut out: BTreeMap<String, UploadInfo> = BTreeMap::new();
            for d in inner.live() {
                for dir in read_dir_paths(&b.uploads_dir(d))? {
                    if let Some(bytes) = fsio::read_opt(&dir.join("upload.json"))?
                        && let Ok(info) = serde_json::from_slice::<UploadInfo>(&bytes)
                    {
                        out.insert(info.upload_id.clone(), info);
                    }
                }
            }
            Ok(out.into_values().collect::<Vec<_>>())
        })
        .await?;
        all.sort_by(|a, b| (a.key.as_bytes(), a.initiated).cmp(&(b.key.as_bytes(), b.initiated)));
        Ok(all)
    }
}

async fn load_upload(inner: &Arc<Inner>, b: &Arc<Bucket>, key: &ObjectKey, id: &str) -> Result<UploadInfo> {
    let id = UploadId::parse(id)?;
    let rel: PathBuf = Path::new("uploads").join(id.as_str()).join("upload.json");
    let (i2, b2) = (inner.clone(), b.clone());
    let info = blocking(move || i2.read_first(&b2, &rel, |bytes, _| serde_json::from_slice::<UploadInfo>(&bytes).ok()))
        .await?
        .ok_or_else(|| Error::NoSuchUpload(id.as_str().to_owned()))?;
    if info.key != key.as_str() {
        return Err(Error::NoSuchUpload(id.as_str().to_owned()));
    }
    Ok(info)
}

/// Remove an upload's directory from every drive (best effort; what is left is swept).
async fn remove_upload_dirs(inner: &Arc<Inner>, b: &Arc<Bucket>, id: &str) {
    let (b2, id) = (b.clone(), id.to_owned());
    let durable = inner.opts.fsync;
    let results = inner
        .on_drives(move |d| {
            let dir = b2.uploads_dir(d).join(&id);
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e).ctx("remove upload", &dir),
            }
            if durable {
                fsio::sync_dir(&b2.uploads_dir(d))?;
            }
            Ok(())
        })
        .await;
    for (d, r) in results {
        if let Err(e) = r {
            tracing::warn!(drive = d, error = %e, "could not remove an upload directory");
        }
    }
}

/// Every part record of upload `id`, merged across drives (the newest record of a number wins).
fn read_parts(inner: &Inner, b: &Bucket, id: &str) -> Result<BTreeMap<u32, PartRecord>> {
    let mut out: BTreeMap<u32, PartRecord> = BTreeMap::new();
    for d in inner.live() {
        let dir = b.uploads_dir(d).join(id);
        for path in read_dir_paths(&dir)? {
            let is_part = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("part."));
            if !is_part {
                continue;
            }
            let Some(bytes) = fsio::read_opt(&path)? else { continue };
            let Ok(rec) = serde_json::from_slice::<PartRecord>(&bytes) else {
                tracing::error!(path = %path.display(), "unreadable part record");
                continue;
            };
            match out.get(&rec.part.number) {
                Some(have) if have.last_modified >= rec.last_modified => {}
                _ => {
                    out.insert(rec.part.number, rec);
                }
            }
        }
    }
    Ok(out)
}

/// Data that in-progress uploads hold (kept by the sweep at open).
pub(crate) fn referenced_data(inner: &Inner, b: &Bucket) -> Result<Vec<String>> {
    let mut ids = std::collections::BTreeSet::new();
    for d in inner.live() {
        for dir in read_dir_paths(&b.uploads_dir(d))? {
            ids.extend(dir.file_name().and_then(|n| n.to_str()).map(str::to_owned));
        }
    }
    let mut out = Vec::new();
    for id in ids {
        out.extend(read_parts(inner, b, &id)?.into_values().filter_map(|p| p.part.data_id));
    }
    Ok(out)
}
