//! Object versions in the metadata index (`storage/FORMAT.md`, "Objects in the index"):
//! reading a key's versions, its current version and inline bytes; the index changes a
//! write makes; and ListObjectVersions over the `Versions` table.
//!
//! - `Versions`: one row per version or delete marker, newest first within a key; the
//!   value is the version's record (JSON), its order stamp is in the key.
//! - `Current`: one row per key whose newest version is not a delete marker: the order
//!   stamp (8 bytes, little-endian) and the listing row ([`Listed`]: what a LIST entry
//!   shows, ~100 bytes, so a 1,000-key page spans few B-tree pages). LIST reads only this;
//!   HEAD and GET read the key's newest `Versions` row (one seek).
//! - `Inline`: the bytes of an inline version, under the same key as its `Versions` row.
//! - `Data`: one row per shard file id a committed version references.

use crate::error::{Error, Result};
use crate::index::{Batch, Table, keys};
use crate::listing::ListQuery;
use crate::meta::ObjectMeta;
use crate::object::{VersionItem, VersionPage};
use crate::store::{Bucket, Inner, KeyEntry};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

fn corrupt(table: &str, bucket: &str, key: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path: PathBuf::from(format!("index/{table}/{bucket}/{key}")),
        reason: e.to_string(),
    }
}

/// A version's stored record.
pub(crate) fn encode(meta: &ObjectMeta) -> Vec<u8> {
    serde_json::to_vec(meta).expect("metadata always serialises")
}

fn decode(bucket: &str, key: &str, order: u64, bytes: &[u8]) -> Result<ObjectMeta> {
    let mut m: ObjectMeta = serde_json::from_slice(bytes).map_err(|e| corrupt("versions", bucket, key, e))?;
    m.order = order;
    Ok(m)
}

/// A `Current` row's record: what a listing shows of a key's current version, with short
/// field names (the JSON is most of the row).
#[derive(serde::Serialize, serde::Deserialize)]
struct Listed {
    /// Size.
    s: u64,
    /// ETag.
    e: String,
    /// Last-Modified: seconds and nanoseconds since the epoch.
    t: (u64, u32),
    /// Storage class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
    /// Owning account, when not the bucket's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    o: Option<String>,
    /// Checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<crate::checksum::Checksum>,
    /// Multipart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    m: bool,
}

fn encode_current(meta: &ObjectMeta) -> Vec<u8> {
    let t = meta.last_modified.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let listed = Listed {
        s: meta.size,
        e: meta.etag.clone(),
        t: (t.as_secs(), t.subsec_nanos()),
        c: meta.attrs.storage_class.clone(),
        o: meta.attrs.owner.clone(),
        k: meta.checksum.clone(),
        m: meta.multipart,
    };
    let mut out = meta.order.to_le_bytes().to_vec();
    serde_json::to_writer(&mut out, &listed).expect("listing rows always serialise");
    out
}

/// A `Current` row as the version's metadata, with what a listing needs filled in (no
/// parts, no other attributes).
fn decode_current(bucket: &str, key: &[u8], bytes: &[u8]) -> Result<ObjectMeta> {
    // The key is only named in an error, so it is made a string only then.
    let failed = |e: &dyn std::fmt::Display| corrupt("current", bucket, &String::from_utf8_lossy(key), e);
    let (order, rest) = bytes
        .split_at_checked(8)
        .ok_or_else(|| failed(&"record shorter than its order stamp"))?;
    let l: Listed = serde_json::from_slice(rest).map_err(|e| failed(&e))?;
    Ok(ObjectMeta {
        version_id: None,
        size: l.s,
        etag: l.e,
        last_modified: std::time::UNIX_EPOCH + std::time::Duration::new(l.t.0, l.t.1),
        attrs: crate::meta::ObjectAttrs {
            storage_class: l.c,
            owner: l.o,
            ..Default::default()
        },
        checksum: l.k,
        multipart: l.m,
        parts: Vec::new(),
        inline_at: None,
        delete_marker: false,
        upload_id: None,
        order: u64::from_le_bytes(order.try_into().expect("8 bytes")),
    })
}

/// A time as an order stamp: nanoseconds since the epoch.
pub(crate) fn stamp(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Inner {
    /// Every version of `key`, newest first; `None` when it has none.
    pub(crate) fn entry(&self, b: &Bucket, key: &str) -> Result<Option<KeyEntry>> {
        let prefix = keys::object(&b.name, key);
        let rows = self.index.read(|ix| ix.scan_prefix(Table::Versions, &prefix, usize::MAX))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut versions = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            let (_, order) = keys::parse_version(&b.name, &k).ok_or_else(|| corrupt("versions", &b.name, key, "unreadable key"))?;
            versions.push(Arc::new(decode(&b.name, key, order, &v)?));
        }
        Ok(Some(KeyEntry { versions }))
    }

    /// The newest version of `key`, delete marker or not.
    pub(crate) fn latest_version(&self, b: &Bucket, key: &str) -> Result<Option<ObjectMeta>> {
        let prefix = keys::object(&b.name, key);
        let rows = self.index.read(|ix| ix.scan_prefix(Table::Versions, &prefix, 1))?;
        match rows.into_iter().next() {
            None => Ok(None),
            Some((k, v)) => {
                let (_, order) = keys::parse_version(&b.name, &k).ok_or_else(|| corrupt("versions", &b.name, key, "unreadable key"))?;
                decode(&b.name, key, order, &v).map(Some)
            }
        }
    }

    /// The inline bytes of version `meta` of `key`; `None` when the version is gone (a
    /// concurrent overwrite or delete replaced it after `meta` was read).
    pub(crate) fn inline_bytes(&self, b: &Bucket, key: &str, meta: &ObjectMeta) -> Result<Option<Vec<u8>>> {
        let k = keys::version(&b.name, key, meta.order);
        let found = self.index.read(|ix| match ix.get(Table::Inline, &k)? {
            Some(bytes) => Ok(Some(bytes)),
            None if ix.get(Table::Versions, &k)?.is_none() => Ok(None),
            None => Err(corrupt("inline", &b.name, key, "an inline version without its bytes")),
        })?;
        match found {
            Some(bytes) if bytes.len() as u64 != meta.size => Err(corrupt("inline", &b.name, key, "inline bytes of the wrong length")),
            found => Ok(found),
        }
    }

    /// Whether the bucket holds no version or delete marker.
    pub(crate) fn bucket_is_empty(&self, b: &Bucket) -> Result<bool> {
        let prefix = keys::bucket_prefix(&b.name);
        Ok(self.index.read(|ix| ix.scan_prefix(Table::Versions, &prefix, 1))?.is_empty())
    }

    /// Whether a committed version references shard file `id`.
    pub(crate) fn data_referenced(&self, b: &Bucket, id: &str) -> Result<bool> {
        let k = keys::data(&b.name, id);
        Ok(self.index.read(|ix| ix.get(Table::Data, &k))?.is_some())
    }
}

/// The index changes that make `key`'s versions `first` (a new newest version, with its
/// inline bytes) followed by `kept`, removing `removed`; the new versions, newest first.
/// The new version's order stamp is its time, or one past the newest stamp the key has
/// had, whichever is higher, so stamps only grow within a key.
pub(crate) fn change(
    bucket: &str,
    key: &str,
    first: Option<(ObjectMeta, &[u8])>,
    kept: Vec<ObjectMeta>,
    removed: &[ObjectMeta],
) -> (Batch, Vec<ObjectMeta>) {
    let mut batch = Batch::new();
    for r in removed {
        let vk = keys::version(bucket, key, r.order);
        if r.inline_at.is_some() {
            batch.delete(Table::Inline, vk.clone());
        }
        batch.delete(Table::Versions, vk);
        for id in r.data_ids() {
            batch.delete(Table::Data, keys::data(bucket, id));
        }
    }
    let mut versions = Vec::with_capacity(kept.len() + 1);
    if let Some((mut m, bytes)) = first {
        let floor = kept.iter().chain(removed).map(|v| v.order.saturating_add(1)).max().unwrap_or(0);
        m.order = stamp(m.last_modified).max(floor);
        let vk = keys::version(bucket, key, m.order);
        if m.inline_at.is_some() {
            m.inline_at = Some(0);
            batch.put(Table::Inline, vk.clone(), bytes);
        }
        batch.put(Table::Versions, vk, &encode(&m));
        for id in m.data_ids() {
            batch.put(Table::Data, keys::data(bucket, id), &[]);
        }
        versions.push(m);
    }
    versions.extend(kept);
    let ck = keys::current(bucket, key);
    match versions.first() {
        Some(newest) if !newest.delete_marker => batch.put(Table::Current, ck, &encode_current(newest)),
        _ => batch.delete(Table::Current, ck),
    };
    (batch, versions)
}

/// The index change that rewrites version `meta` of `key` in place (new attributes);
/// `newest` when it is the key's newest version.
pub(crate) fn rewrite(bucket: &str, key: &str, meta: &ObjectMeta, newest: bool) -> Batch {
    let mut batch = Batch::new();
    batch.put(Table::Versions, keys::version(bucket, key, meta.order), &encode(meta));
    if newest && !meta.delete_marker {
        batch.put(Table::Current, keys::current(bucket, key), &encode_current(meta));
    }
    batch
}

/// Visit `[lower, upper)` of `table` ascending, from a current drive, until `visit` returns
/// `Ok(false)`. Rows are read in chunks (16 at first, doubling to 1,024), each from one
/// snapshot and copied out, so `visit` runs outside the engine's read and a chunk that
/// failed on one drive is read whole from another; a walk that stops early (a listing
/// skipping a common prefix) copies little.
pub(crate) fn scan_chunked(
    inner: &Inner,
    table: Table,
    lower: Bound<Vec<u8>>,
    upper: &[u8],
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
) -> Result<()> {
    let mut lower = lower;
    let mut chunk = 16usize;
    loop {
        let rows = inner.index.read(|ix| {
            let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(chunk);
            ix.scan(table, lower.as_ref().map(Vec::as_slice), Bound::Excluded(upper), |k, v| {
                rows.push((k.to_vec(), v.to_vec()));
                Ok(rows.len() < chunk)
            })?;
            Ok(rows)
        })?;
        let full = rows.len() == chunk;
        for (k, v) in &rows {
            if !visit(k, v)? {
                return Ok(());
            }
        }
        match rows.into_iter().last() {
            Some((k, _)) if full => lower = Bound::Excluded(k),
            _ => return Ok(()),
        }
        chunk = (chunk * 2).min(1024);
    }
}

/// A listing source over `Current`: a bucket's visible keys and their current versions.
pub(crate) struct CurrentKeys<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) bucket: &'a str,
}

impl crate::listing::Source for CurrentKeys<'_> {
    type Value = Arc<ObjectMeta>;

    fn scan_from(&self, from: Bound<&[u8]>, visit: &mut dyn FnMut(&[u8], Self::Value) -> bool) -> Result<()> {
        let bp = keys::bucket_prefix(self.bucket);
        let with = |k: &[u8]| {
            let mut v = bp.clone();
            v.extend_from_slice(k);
            v
        };
        let lower = match from {
            Bound::Included(k) => Bound::Included(with(k)),
            Bound::Excluded(k) => Bound::Excluded(with(k)),
            Bound::Unbounded => Bound::Included(bp.clone()),
        };
        scan_chunked(self.inner, Table::Current, lower, &keys::prefix_end(&bp), |k, v| {
            let key = &k[bp.len()..];
            let m = decode_current(self.bucket, key, v)?;
            Ok(visit(key, Arc::new(m)))
        })
    }
}

/// One page of ListObjectVersions from `Versions`: keys in order, each key's versions
/// newest first, `q.max` versions and common prefixes in all; resumes after `q.start_after`
/// (all of its versions), or within it after `version_marker` (`Some(None)`: the null
/// version).
pub(crate) fn list_versions(inner: &Inner, b: &Bucket, q: &ListQuery<'_>, version_marker: Option<Option<&str>>) -> Result<VersionPage> {
    let mut page = VersionPage::default();
    if q.max == 0 {
        return Ok(page);
    }
    let bucket = b.name.as_str();
    let start = keys::escaped_prefix(bucket, q.prefix);
    let upper = keys::prefix_end(&start);
    // Where to begin: the prefix, or past the marker when it is further on.
    let mut lower = Bound::Included(start.clone());
    let mut last_key: Option<String> = None;
    if let Some(km) = q.start_after {
        let mut from = keys::prefix_end(&keys::object(bucket, km));
        let mut exclusive = false;
        if let Some(vm) = version_marker {
            let found = inner
                .entry(b, km)?
                .and_then(|e| e.versions.iter().find(|m| m.version_id.as_deref() == vm).map(|m| m.order));
            if let Some(order) = found {
                from = keys::version(bucket, km, order);
                exclusive = true;
                last_key = Some(km.to_owned());
            }
        }
        if from > start {
            lower = if exclusive { Bound::Excluded(from) } else { Bound::Included(from) };
        } else {
            last_key = None;
        }
    }
    let delimiter = q.delimiter.filter(|d| !d.is_empty());
    loop {
        let mut next: Option<Vec<u8>> = None;
        let mut done = false;
        scan_chunked(inner, Table::Versions, lower.clone(), &upper, |k, v| {
            let (key, order) = keys::parse_version(bucket, k).ok_or_else(|| corrupt("versions", bucket, "?", "unreadable key"))?;
            let rest = key.get(q.prefix.len()..).unwrap_or_default();
            let rolled = delimiter.and_then(|d| rest.find(d).map(|at| key[..q.prefix.len() + at + d.len()].to_owned()));
            if let Some(cp) = rolled {
                if q.start_after.is_none_or(|s| cp.as_str() > s) {
                    if page.items.len() == q.max {
                        page.truncated = true;
                        done = true;
                        return Ok(false);
                    }
                    page.items.push(VersionItem::CommonPrefix(cp.clone()));
                }
                next = Some(keys::prefix_end(&keys::escaped_prefix(bucket, &cp)));
                last_key = None;
                return Ok(false);
            }
            if page.items.len() == q.max {
                page.truncated = true;
                done = true;
                return Ok(false);
            }
            let meta = decode(bucket, &key, order, v)?;
            let latest = last_key.as_deref() != Some(key.as_str());
            page.items.push(VersionItem::Version {
                key: key.clone(),
                meta: Arc::new(meta),
                latest,
            });
            last_key = Some(key);
            Ok(true)
        })?;
        match next {
            Some(n) if !done => lower = Bound::Included(n),
            _ => return Ok(page),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumType};
    use crate::meta::{ObjectAttrs, PartMeta};

    #[test]
    fn a_listing_row_keeps_what_a_listing_shows_and_is_small() {
        let meta = ObjectMeta {
            version_id: Some("0123456789abcdef0123456789abcdef".into()),
            size: 123_456,
            etag: "0123456789abcdef0123456789abcdef-3".into(),
            last_modified: std::time::UNIX_EPOCH + std::time::Duration::new(1_764_547_200, 987_654_321),
            attrs: ObjectAttrs {
                content_type: Some("application/x-parquet".into()),
                storage_class: Some("STANDARD_IA".into()),
                owner: Some("111122223333".into()),
                user: [("k".into(), "v".into())].into(),
                ..Default::default()
            },
            checksum: Some(Checksum {
                algorithm: ChecksumAlgorithm::Crc32,
                value: "AAAAAA==".into(),
                kind: ChecksumType::Composite,
            }),
            multipart: true,
            parts: vec![PartMeta {
                number: 1,
                size: 123_456,
                etag: "x".into(),
                checksum: None,
                data_id: Some("abc".into()),
            }],
            inline_at: None,
            delete_marker: false,
            upload_id: Some("u".into()),
            order: 42,
        };
        let row = encode_current(&meta);
        assert!(row.len() < 200, "{} bytes", row.len());
        let got = decode_current("b", b"k", &row).unwrap();
        assert_eq!(
            (got.size, &got.etag, got.last_modified, got.multipart, got.order),
            (meta.size, &meta.etag, meta.last_modified, true, 42)
        );
        assert_eq!(
            (&got.attrs.storage_class, &got.attrs.owner),
            (&meta.attrs.storage_class, &meta.attrs.owner)
        );
        assert_eq!(got.checksum, meta.checksum);
        assert!(decode_current("b", b"k", &row[..row.len() - 1]).is_err());
    }
}
