//! Object versions in the metadata index (`storage/FORMAT.md`, "Objects in the index"):
//! reading a key's versions, its current version and inline bytes; the index changes a
//! write makes; and ListObjectVersions over the `Versions` table.
//!
//! - `Versions`: one row per version or delete marker, newest first within a key; the
//!   value is the version's record (JSON), its order stamp is in the key.
//! - `Current`: one row per key whose newest version is not a delete marker: the order
//!   stamp (8 bytes, little-endian) and the listing row (what a LIST entry shows, in
//!   binary: ~40 bytes for a plain object, so a 1,000-key page spans few B-tree pages and
//!   decodes without a parser). LIST reads only this; HEAD and GET read the key's newest
//!   `Versions` row (one seek). ListObjectVersions decodes only the listed fields of each
//!   `Versions` record.
//! - `Inline`: the bytes of an inline version, under the same key as its `Versions` row.
//! - `Data`: one row per shard file id a committed version references.

use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumType};
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

/// What a ListObjectVersions entry shows of a version record: the fields it needs are
/// decoded, the rest (user metadata, tags, parts) only skipped over.
#[derive(serde::Deserialize)]
struct ListedVersion {
    #[serde(default)]
    version_id: Option<String>,
    size: u64,
    etag: String,
    #[serde(with = "crate::meta::compact_time")]
    last_modified: SystemTime,
    #[serde(default)]
    attrs: ListedAttrs,
    #[serde(default)]
    checksum: Option<Checksum>,
    #[serde(default)]
    multipart: bool,
    #[serde(default)]
    delete_marker: bool,
}

#[derive(Default, serde::Deserialize)]
struct ListedAttrs {
    #[serde(default)]
    storage_class: Option<String>,
    #[serde(default)]
    owner: Option<String>,
}

/// A version record with what a version listing shows filled in (no parts, no other
/// attributes).
fn decode_listed_version(bucket: &str, key: &str, order: u64, bytes: &[u8]) -> Result<ObjectMeta> {
    let l: ListedVersion = serde_json::from_slice(bytes).map_err(|e| corrupt("versions", bucket, key, e))?;
    Ok(ObjectMeta {
        version_id: l.version_id,
        size: l.size,
        etag: l.etag,
        last_modified: l.last_modified,
        attrs: crate::meta::ObjectAttrs {
            storage_class: l.attrs.storage_class,
            owner: l.attrs.owner,
            ..Default::default()
        },
        checksum: l.checksum,
        multipart: l.multipart,
        parts: Vec::new(),
        inline_at: None,
        delete_marker: l.delete_marker,
        upload_id: None,
        order,
    })
}

/// The tag that opens a binary `Current` listing row (after the order stamp). The first
/// format was JSON, which opens with `{`; rows of either kind are read.
const LISTED_V1: u8 = 1;

/// Flags of a binary listing row.
const L_MULTIPART: u8 = 1;
const L_CLASS: u8 = 2;
const L_OWNER: u8 = 4;
const L_CHECKSUM: u8 = 8;
/// The ETag is a plain MD5 (32 lower-case hex digits), kept as its 16 bytes.
const L_MD5: u8 = 16;

/// A `Current` row: the order stamp (u64 LE), then what a listing shows of the key's
/// current version in binary (`storage/FORMAT.md`, "Listing rows"): ~40 bytes for a
/// plain object, so a 1,000-key page spans few B-tree pages and decodes without a parser.
fn encode_current(meta: &ObjectMeta) -> Vec<u8> {
    let t = meta.last_modified.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut out = Vec::with_capacity(48 + meta.etag.len());
    out.extend_from_slice(&meta.order.to_le_bytes());
    out.push(LISTED_V1);
    let md5 = md5_bytes(&meta.etag);
    let class = meta.attrs.storage_class.as_deref();
    let owner = meta.attrs.owner.as_deref();
    let flags = [
        (meta.multipart, L_MULTIPART),
        (class.is_some(), L_CLASS),
        (owner.is_some(), L_OWNER),
        (meta.checksum.is_some(), L_CHECKSUM),
        (md5.is_some(), L_MD5),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |f, (_, bit)| f | bit);
    out.push(flags);
    put_varint(&mut out, meta.size);
    put_varint(&mut out, t.as_secs());
    out.extend_from_slice(&t.subsec_nanos().to_le_bytes());
    match md5 {
        Some(raw) => out.extend_from_slice(&raw),
        None => put_bytes(&mut out, meta.etag.as_bytes()),
    }
    for s in [class, owner].into_iter().flatten() {
        put_bytes(&mut out, s.as_bytes());
    }
    if let Some(c) = &meta.checksum {
        let algorithm = ChecksumAlgorithm::ALL.iter().position(|a| *a == c.algorithm);
        out.push(algorithm.expect("every algorithm is in ALL") as u8);
        out.push(match c.kind {
            ChecksumType::FullObject => 0,
            ChecksumType::Composite => 1,
        });
        put_bytes(&mut out, c.value.as_bytes());
    }
    out
}

/// The 16 bytes of an ETag that is exactly a lower-case hex MD5 (so it comes back the same).
fn md5_bytes(etag: &str) -> Option<[u8; 16]> {
    let lower = etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !lower {
        return None;
    }
    let mut raw = [0u8; 16];
    hex_simd::decode(etag.as_bytes(), hex_simd::Out::from_slice(&mut raw)).ok()?;
    Some(raw)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A reader over a binary row; every read is bounds-checked.
struct RowReader<'a>(&'a [u8]);

impl<'a> RowReader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], &'static str> {
        let (head, rest) = self.0.split_at_checked(n).ok_or("row ends early")?;
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> std::result::Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> std::result::Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long")
    }

    fn string(&mut self) -> std::result::Result<String, &'static str> {
        let n = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "string not UTF-8")
    }
}

fn decode_listed_v1(r: &mut RowReader<'_>, m: &mut ObjectMeta) -> std::result::Result<(), &'static str> {
    let flags = r.byte()?;
    m.multipart = flags & L_MULTIPART != 0;
    m.size = r.varint()?;
    let secs = r.varint()?;
    let nanos = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
    if nanos >= 1_000_000_000 {
        return Err("nanoseconds out of range");
    }
    m.last_modified = std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::new(secs, nanos))
        .ok_or("time out of range")?;
    m.etag = if flags & L_MD5 != 0 {
        hex_simd::encode_to_string(r.take(16)?, hex_simd::AsciiCase::Lower)
    } else {
        r.string()?
    };
    if flags & L_CLASS != 0 {
        m.attrs.storage_class = Some(r.string()?);
    }
    if flags & L_OWNER != 0 {
        m.attrs.owner = Some(r.string()?);
    }
    if flags & L_CHECKSUM != 0 {
        let algorithm = *ChecksumAlgorithm::ALL
            .get(usize::from(r.byte()?))
            .ok_or("unknown checksum algorithm")?;
        let kind = match r.byte()? {
            0 => ChecksumType::FullObject,
            1 => ChecksumType::Composite,
            _ => return Err("unknown checksum type"),
        };
        m.checksum = Some(Checksum {
            algorithm,
            value: r.string()?,
            kind,
        });
    }
    if !r.0.is_empty() {
        return Err("bytes after the row");
    }
    Ok(())
}

/// The first format of a `Current` row's listing part: JSON with short names.
#[derive(serde::Deserialize)]
struct ListedJson {
    s: u64,
    e: String,
    #[serde(with = "crate::meta::compact_time")]
    t: SystemTime,
    #[serde(default)]
    c: Option<String>,
    #[serde(default)]
    o: Option<String>,
    #[serde(default)]
    k: Option<Checksum>,
    #[serde(default)]
    m: bool,
}

/// A `Current` row as the version's metadata, with what a listing needs filled in (no
/// parts, no other attributes).
fn decode_current(bucket: &str, key: &[u8], bytes: &[u8]) -> Result<ObjectMeta> {
    // The key is only named in an error, so it is made a string only then.
    let failed = |e: &dyn std::fmt::Display| corrupt("current", bucket, &String::from_utf8_lossy(key), e);
    let (order, rest) = bytes
        .split_at_checked(8)
        .ok_or_else(|| failed(&"record shorter than its order stamp"))?;
    let mut m = ObjectMeta {
        version_id: None,
        size: 0,
        etag: String::new(),
        last_modified: std::time::UNIX_EPOCH,
        attrs: crate::meta::ObjectAttrs::default(),
        checksum: None,
        multipart: false,
        parts: Vec::new(),
        inline_at: None,
        delete_marker: false,
        upload_id: None,
        order: u64::from_le_bytes(order.try_into().expect("8 bytes")),
    };
    match rest.split_first() {
        Some((&LISTED_V1, body)) => decode_listed_v1(&mut RowReader(body), &mut m).map_err(|e| failed(&e))?,
        Some((b'{', _)) => {
            let l: ListedJson = serde_json::from_slice(rest).map_err(|e| failed(&e))?;
            m.size = l.s;
            m.etag = l.e;
            m.last_modified = l.t;
            m.attrs.storage_class = l.c;
            m.attrs.owner = l.o;
            m.checksum = l.k;
            m.multipart = l.m;
        }
        _ => return Err(failed(&"unknown listing row format")),
    }
    Ok(m)
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
    visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
) -> Result<()> {
    scan_chunked_from(inner, table, lower, upper, 16, visit)
}

/// Rows a listing walk reads first: a whole page (and the row that tells whether more
/// follow) in one read when it has no delimiter, a few when each common prefix it meets
/// ends the walk after one row.
fn first_chunk(q: &ListQuery<'_>) -> usize {
    if q.delimiter.is_some_and(|d| !d.is_empty()) {
        4
    } else {
        q.max.saturating_add(1).clamp(1, MAX_CHUNK)
    }
}

/// The most rows one chunk of a walk copies.
const MAX_CHUNK: usize = 1024;

/// [`scan_chunked`] reading `first` rows in its first chunk.
pub(crate) fn scan_chunked_from(
    inner: &Inner,
    table: Table,
    lower: Bound<Vec<u8>>,
    upper: &[u8],
    first: usize,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
) -> Result<()> {
    let mut lower = lower;
    let mut chunk = first.clamp(1, MAX_CHUNK);
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
        chunk = (chunk * 2).min(MAX_CHUNK);
    }
}

/// A listing source over `Current`: a bucket's visible keys and their current versions.
pub(crate) struct CurrentKeys<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) bucket: &'a str,
    /// Rows each walk reads first ([`first_chunk`]).
    chunk: usize,
}

impl<'a> CurrentKeys<'a> {
    pub(crate) fn new(inner: &'a Inner, bucket: &'a str, q: &ListQuery<'_>) -> Self {
        Self {
            inner,
            bucket,
            chunk: first_chunk(q),
        }
    }
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
        scan_chunked_from(self.inner, Table::Current, lower, &keys::prefix_end(&bp), self.chunk, |k, v| {
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
        scan_chunked_from(inner, Table::Versions, lower.clone(), &upper, first_chunk(q), |k, v| {
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
            let meta = decode_listed_version(bucket, &key, order, v)?;
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
        // Every cut short row, and one with a byte too many, is a clean error.
        for n in 0..row.len() {
            assert!(decode_current("b", b"k", &row[..n]).is_err(), "cut at {n}");
        }
        let mut long = row.clone();
        long.push(0);
        assert!(decode_current("b", b"k", &long).is_err());
    }

    fn plain(etag: &str) -> ObjectMeta {
        ObjectMeta {
            version_id: None,
            size: 4096,
            etag: etag.into(),
            last_modified: std::time::UNIX_EPOCH + std::time::Duration::new(1_764_547_200, 5),
            attrs: ObjectAttrs::default(),
            checksum: None,
            multipart: false,
            parts: Vec::new(),
            inline_at: Some(0),
            delete_marker: false,
            upload_id: None,
            order: 7,
        }
    }

    #[test]
    fn a_plain_objects_listing_row_is_binary_and_keeps_its_etag_exactly() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        let row = encode_current(&plain(md5));
        // Order stamp, tag, flags, size, seconds, nanoseconds, 16-byte MD5.
        assert_eq!(row.len(), 8 + 1 + 1 + 2 + 5 + 4 + 16);
        assert_eq!(decode_current("b", b"k", &row).unwrap().etag, md5);
        // ETags that are not a lower-case hex MD5 are kept as text.
        for etag in ["D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e-2", "", "é"] {
            let got = decode_current("b", b"k", &encode_current(&plain(etag))).unwrap();
            assert_eq!(got.etag, etag);
            assert_eq!((got.size, got.order, got.last_modified), (4096, 7, plain(etag).last_modified));
        }
    }

    #[test]
    fn listing_rows_of_the_first_format_are_still_read() {
        let mut row = 9u64.to_le_bytes().to_vec();
        row.extend_from_slice(br#"{"s":10,"e":"abc","t":[1764547200,3],"o":"111122223333","m":true}"#);
        let got = decode_current("b", b"k", &row).unwrap();
        assert_eq!((got.size, got.etag.as_str(), got.order, got.multipart), (10, "abc", 9, true));
        assert_eq!(got.attrs.owner.as_deref(), Some("111122223333"));
        let mut unknown = 9u64.to_le_bytes().to_vec();
        unknown.push(0x7F);
        assert!(decode_current("b", b"k", &unknown).is_err());
    }
}
