//! Object writes and reads. A write is two steps: [`Store::stage`] streams the body to a new
//! data file (or memory, when small) while hashing it, and a commit makes it visible by
//! atomically renaming its metadata file into place. Between the two the caller checks
//! digests, including those that arrive in trailers after the body.

use crate::checksum::{BodyHasher, Checksum, ChecksumAlgorithm};
use crate::error::{Error, IoContext, Result};
use crate::fsio::{self, blocking};
use crate::listing::{self, ListPage, ListQuery};
use crate::meta::{KeyRecord, MetaFile, ObjectAttrs, ObjectMeta, PartMeta};
use crate::names::{BucketName, ObjectKey};
use crate::store::{Bucket, Store};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::SystemTime;

/// An object body: a stream of chunks, shareable across threads as HTTP bodies must be.
pub type BodyStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static>>;

/// Size of the buffers bodies are written and read in.
const IO_CHUNK: usize = 1024 * 1024;

/// A body written to the store but not yet visible under any key.
/// Dropping it without committing deletes its data.
pub struct StagedData {
    bucket: Arc<Bucket>,
    data_id: Option<String>,
    inline: Bytes,
    size: u64,
    md5: [u8; 16],
    checksum: Option<Checksum>,
}

impl StagedData {
    /// Bytes in the body.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Hex MD5 of the body (its ETag as a single-part object).
    pub fn etag(&self) -> String {
        crate::checksum::hex(&self.md5)
    }
    /// The checksum computed while staging, if one was asked for.
    pub fn checksum(&self) -> Option<&Checksum> {
        self.checksum.as_ref()
    }
    /// Check a `Content-MD5` header (base64): `InvalidDigest` if malformed, `BadDigest` if different.
    pub fn verify_content_md5(&self, b64: &str) -> Result<()> {
        let raw = base64_simd::STANDARD
            .decode_to_vec(b64.trim().as_bytes())
            .map_err(|_| Error::InvalidDigest)?;
        if raw.len() != 16 {
            return Err(Error::InvalidDigest);
        }
        if raw != self.md5 {
            return Err(Error::BadDigest);
        }
        Ok(())
    }

    /// Hand the body's data file over to the caller (writing it out first if the body was
    /// kept in memory); the staged value no longer deletes it on drop.
    pub(crate) async fn take_data_file(&mut self, b: &Arc<Bucket>, durable: bool) -> Result<String> {
        if let Some(id) = self.data_id.take() {
            return Ok(id);
        }
        let id = crate::names::random_hex();
        let path = b.data_path(&id);
        let bytes = std::mem::take(&mut self.inline);
        blocking(move || {
            let mut f = File::create_new(&path).ctx("create", &path)?;
            f.write_all(&bytes).ctx("write", &path)?;
            if durable {
                f.sync_data().ctx("fsync", &path)?;
                fsio::sync_dir(path.parent().expect("fan-out dir"))?;
            }
            Ok(())
        })
        .await?;
        Ok(id)
    }

    fn into_part(mut self, number: u32) -> (PartMeta, Bytes) {
        let part = PartMeta {
            number,
            size: self.size,
            etag: self.etag(),
            checksum: self.checksum.clone(),
            data_id: self.data_id.take(),
        };
        (part, std::mem::take(&mut self.inline))
    }
}

impl std::fmt::Debug for StagedData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedData")
            .field("size", &self.size)
            .field("data_id", &self.data_id)
            .field("etag", &self.etag())
            .finish()
    }
}

impl Drop for StagedData {
    fn drop(&mut self) {
        if let Some(id) = self.data_id.take() {
            let _ = std::fs::remove_file(self.bucket.data_path(&id));
        }
    }
}

/// Conditions a write must meet at commit time (`If-Match`, `If-None-Match: *`).
#[derive(Clone, Debug, Default)]
pub struct WriteCondition {
    /// The current object must exist and have this ETag (`*`: just exist).
    pub if_match: Option<String>,
    /// The key must not exist.
    pub if_none_match_any: bool,
}

impl WriteCondition {
    pub(crate) fn check(&self, current: Option<&ObjectMeta>) -> Result<()> {
        if let Some(want) = &self.if_match {
            match current {
                None => return Err(Error::NoSuchKeyForCondition),
                Some(cur) if want != "*" && want.trim_matches('"') != cur.etag => {
                    return Err(Error::PreconditionFailed("If-Match"));
                }
                Some(_) => {}
            }
        }
        if self.if_none_match_any && current.is_some() {
            return Err(Error::PreconditionFailed("If-None-Match"));
        }
        Ok(())
    }
}

/// Which bytes of an object a read wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRange {
    /// The whole object.
    All,
    /// `bytes=first-last` (inclusive; `last` open means to the end).
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
    /// One part of a multipart object (part 1 of a single-part object is the object).
    Part(u32),
}

/// An object opened for reading: its metadata, the byte range served and the body.
pub struct ObjectReader {
    pub meta: Arc<ObjectMeta>,
    /// Half-open range of the object's bytes that `body` yields.
    pub range: std::ops::Range<u64>,
    /// Whether a range or part was asked for (and so a 206 is due).
    pub partial: bool,
    pub body: BodyStream,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl ObjectMeta {
    /// The half-open byte range `range` selects, and whether it is partial (a 206).
    pub fn resolve(&self, range: ReadRange) -> Result<(std::ops::Range<u64>, bool)> {
        resolve_range(self, range)
    }
}

fn resolve_range(meta: &ObjectMeta, range: ReadRange) -> Result<(std::ops::Range<u64>, bool)> {
    let size = meta.size;
    match range {
        ReadRange::All => Ok((0..size, false)),
        ReadRange::From { first, last } => {
            if first >= size {
                return Err(Error::InvalidRange { size });
            }
            let end = last.map_or(size, |l| l.saturating_add(1).min(size));
            if end <= first {
                return Err(Error::InvalidRange { size });
            }
            Ok((first..end, true))
        }
        ReadRange::Suffix(n) => {
            if n == 0 {
                return Err(Error::InvalidRange { size });
            }
            Ok((size.saturating_sub(n)..size, true))
        }
        ReadRange::Part(n) => {
            let count = u32::try_from(meta.parts.len()).unwrap_or(u32::MAX);
            if n == 0 || n > count {
                return Err(Error::InvalidPartNumberForObject(count));
            }
            let start: u64 = meta.parts[..(n - 1) as usize].iter().map(|p| p.size).sum();
            Ok((start..start + meta.parts[(n - 1) as usize].size, true))
        }
    }
}

impl Store {
    /// Stream `body` into the bucket, hashing it with MD5 and `algorithm`. Small bodies stay
    /// in memory (they are stored inline at commit); larger ones go to a fresh data file that
    /// is fsynced before this returns. `expected_len` (the declared length) is enforced.
    pub async fn stage<S, E>(
        &self,
        bucket: &BucketName,
        mut body: S,
        algorithm: Option<ChecksumAlgorithm>,
        expected_len: Option<u64>,
    ) -> Result<StagedData>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let b = self.bucket(bucket)?;
        let opts = &self.inner.opts;
        let limit = opts.max_put_size;
        if expected_len.is_some_and(|l| l > limit) {
            return Err(Error::EntityTooLarge { limit });
        }
        let mut buf = BytesMut::new();
        let mut hasher = Some(BodyHasher::new(algorithm));
        let mut total: u64 = 0;
        let mut data_id: Option<String> = None;
        // The file and hasher travel to the blocking pool with each 1 MiB write, so hashing
        // and disk I/O overlap with receiving the next chunk.
        let mut file: Option<File> = None;
        let mut pending: Option<tokio::task::JoinHandle<Result<(File, BodyHasher)>>> = None;
        let mut staged = StagedData {
            bucket: b.clone(),
            data_id: None,
            inline: Bytes::new(),
            size: 0,
            md5: [0; 16],
            checksum: None,
        };

        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::IncompleteBody(e.to_string()))?;
            total += chunk.len() as u64;
            if total > limit {
                return Err(Error::EntityTooLarge { limit });
            }
            if expected_len.is_some_and(|l| total > l) {
                return Err(Error::IncompleteBody(format!(
                    "body is longer than the declared {} bytes",
                    expected_len.unwrap_or(0)
                )));
            }
            buf.extend_from_slice(&chunk);
            if data_id.is_none() && buf.len() > opts.inline_threshold {
                let id = crate::names::random_hex();
                let path = b.data_path(&id);
                staged.data_id = Some(id.clone());
                file = Some(blocking(move || File::create_new(&path).ctx("create", &path)).await?);
                data_id = Some(id);
            }
            if data_id.is_some() && buf.len() >= IO_CHUNK {
                let bytes = buf.split().freeze();
                let (f, h) = match pending.take() {
                    Some(t) => join(t).await?,
                    None => (file.take().expect("file is open"), hasher.take().expect("hasher is here")),
                };
                pending = Some(spawn_write(f, h, bytes, b.clone(), data_id.clone().expect("set")));
            }
        }
        if expected_len.is_some_and(|l| total != l) {
            return Err(Error::IncompleteBody(format!(
                "got {total} of the declared {} bytes",
                expected_len.unwrap_or(0)
            )));
        }
        match data_id {
            None => {
                let mut h = hasher.take().expect("hasher is here");
                h.update(&buf);
                let (md5, checksum) = h.finalize();
                staged.inline = buf.freeze();
                staged.md5 = md5;
                staged.checksum = checksum;
            }
            Some(id) => {
                let (f, h) = match pending.take() {
                    Some(t) => join(t).await?,
                    None => (file.take().expect("file is open"), hasher.take().expect("hasher is here")),
                };
                let rest = buf.freeze();
                let durable = opts.fsync;
                let path = b.data_path(&id);
                let (md5, checksum) = blocking(move || {
                    let (mut f, mut h) = (f, h);
                    h.update(&rest);
                    f.write_all(&rest).ctx("write", &path)?;
                    if durable {
                        f.sync_data().ctx("fsync", &path)?;
                        fsio::sync_dir(path.parent().expect("fan-out dir"))?;
                    }
                    Ok(h.finalize())
                })
                .await?;
                staged.md5 = md5;
                staged.checksum = checksum;
            }
        }
        staged.size = total;
        Ok(staged)
    }

    /// Make staged data the object at `key`, if `cond` holds at that moment.
    pub async fn commit_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        staged: StagedData,
        attrs: ObjectAttrs,
        cond: &WriteCondition,
    ) -> Result<Arc<ObjectMeta>> {
        let b = self.bucket(bucket)?;
        let size = staged.size;
        let etag = staged.etag();
        let checksum = staged.checksum.clone();
        let (part, inline) = staged.into_part(1);
        let meta = ObjectMeta {
            version_id: None,
            size,
            etag,
            last_modified: SystemTime::now(),
            attrs,
            checksum,
            multipart: false,
            inline_at: part.data_id.is_none().then_some(0),
            parts: vec![part],
        };
        self.commit_meta(&b, key, meta, inline, cond, true).await
    }

    /// Write `meta` as the latest version of `key` under the key's lock, then delete the data
    /// of the version it replaced. On failure the new version's data is deleted only when
    /// `owns_data` (a multipart upload keeps its parts so the client can retry).
    pub(crate) async fn commit_meta(
        &self,
        b: &Arc<Bucket>,
        key: &ObjectKey,
        meta: ObjectMeta,
        blob: Bytes,
        cond: &WriteCondition,
        owns_data: bool,
    ) -> Result<Arc<ObjectMeta>> {
        let meta = Arc::new(meta);
        let _guard = b.stripe(key.as_str()).lock().await;
        let old = b.lookup(key.as_str());
        if let Err(e) = cond.check(old.as_deref()) {
            if owns_data {
                drop_data(b, &meta);
            }
            return Err(e);
        }
        let record = KeyRecord {
            key: key.to_string(),
            versions: vec![(*meta).clone()],
        };
        let path = b.meta_path(key.as_str());
        let tmp = self.inner.tmp_dir.clone();
        let durable = self.inner.opts.fsync;
        let written = blocking(move || fsio::write_atomic(&tmp, &path, &MetaFile::encode(&record, &blob), durable)).await;
        if let Err(e) = written {
            if owns_data {
                drop_data(b, &meta);
            }
            return Err(e);
        }
        b.index
            .write()
            .expect("index lock")
            .insert(key.as_str().as_bytes().to_vec(), meta.clone());
        drop(_guard);
        if let Some(old) = old {
            drop_data(b, &old);
        }
        Ok(meta)
    }

    /// Change the attributes (tags, say) of the current version of `key` in place: the data
    /// and Last-Modified stay, the metadata file is rewritten atomically.
    pub async fn update_attrs(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        change: impl FnOnce(&mut ObjectAttrs) + Send + 'static,
    ) -> Result<Arc<ObjectMeta>> {
        let b = self.bucket(bucket)?;
        let _guard = b.stripe(key.as_str()).lock().await;
        let current = b.lookup(key.as_str()).ok_or_else(|| Error::NoSuchKey {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })?;
        let path = b.meta_path(key.as_str());
        let tmp = self.inner.tmp_dir.clone();
        let durable = self.inner.opts.fsync;
        let etag = current.etag.clone();
        let updated = blocking(move || {
            let bytes = fsio::read_opt(&path)?.ok_or_else(|| Error::Corrupt {
                path: path.clone(),
                reason: "metadata file vanished".into(),
            })?;
            let mut file = MetaFile::decode(bytes.into(), &path)?;
            let Some(v) = file.record.versions.first_mut().filter(|v| v.etag == etag) else {
                return Err(Error::Corrupt {
                    path,
                    reason: "index and metadata file disagree".into(),
                });
            };
            change(&mut v.attrs);
            let meta = v.clone();
            fsio::write_atomic(&tmp, &path, &MetaFile::encode(&file.record, &file.blob), durable)?;
            Ok(meta)
        })
        .await?;
        let updated = Arc::new(updated);
        b.index
            .write()
            .expect("index lock")
            .insert(key.as_str().as_bytes().to_vec(), updated.clone());
        Ok(updated)
    }

    /// The latest metadata of `key`.
    pub fn head_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Arc<ObjectMeta>> {
        let b = self.bucket(bucket)?;
        b.lookup(key.as_str()).ok_or_else(|| Error::NoSuchKey {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// Open `key` for reading `range`. The data files are opened before this returns, so a
    /// concurrent overwrite cannot pull them away mid-stream.
    pub async fn get_object(&self, bucket: &BucketName, key: &ObjectKey, range: ReadRange) -> Result<ObjectReader> {
        let b = self.bucket(bucket)?;
        // A concurrent overwrite may delete the data between the index lookup and the open;
        // the retry then sees the new version.
        for _ in 0..8 {
            let meta = b.lookup(key.as_str()).ok_or_else(|| Error::NoSuchKey {
                bucket: bucket.to_string(),
                key: key.to_string(),
            })?;
            let (r, partial) = resolve_range(&meta, range)?;
            match open_body(&b, key, &meta, r.clone()).await? {
                Some(body) => {
                    return Ok(ObjectReader {
                        meta,
                        range: r,
                        partial,
                        body,
                    });
                }
                None => continue,
            }
        }
        Err(Error::Io {
            context: "read (object kept changing)",
            path: b.meta_path(key.as_str()),
            source: std::io::Error::other("too many concurrent overwrites"),
        })
    }

    /// Delete `key`; deleting a missing key succeeds, as in S3.
    pub async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Option<Arc<ObjectMeta>>> {
        let b = self.bucket(bucket)?;
        let _guard = b.stripe(key.as_str()).lock().await;
        let Some(old) = b.lookup(key.as_str()) else { return Ok(None) };
        let path = b.meta_path(key.as_str());
        let durable = self.inner.opts.fsync;
        blocking(move || fsio::remove_file(&path, durable)).await?;
        b.index.write().expect("index lock").remove(key.as_str().as_bytes());
        drop(_guard);
        drop_data(&b, &old);
        Ok(Some(old))
    }

    /// One page of a bucket listing.
    pub fn list_objects(&self, bucket: &BucketName, query: &ListQuery<'_>) -> Result<ListPage<Arc<ObjectMeta>>> {
        let b = self.bucket(bucket)?;
        let index = b.index.read().expect("index lock");
        Ok(listing::list(&index, query))
    }

    /// Whether the bucket holds no objects.
    pub fn bucket_is_empty(&self, bucket: &BucketName) -> Result<bool> {
        Ok(self.bucket(bucket)?.index.read().expect("index lock").is_empty())
    }
}

fn drop_data(b: &Bucket, meta: &ObjectMeta) {
    for id in meta.data_ids() {
        let _ = std::fs::remove_file(b.data_path(id));
    }
}

fn spawn_write(
    mut f: File,
    mut h: BodyHasher,
    bytes: Bytes,
    b: Arc<Bucket>,
    id: String,
) -> tokio::task::JoinHandle<Result<(File, BodyHasher)>> {
    tokio::task::spawn_blocking(move || {
        h.update(&bytes);
        f.write_all(&bytes).ctx("write", &b.data_path(&id))?;
        Ok((f, h))
    })
}

async fn join<T>(t: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    t.await.map_err(|e| Error::Io {
        context: "write task",
        path: Default::default(),
        source: std::io::Error::other(e.to_string()),
    })?
}

/// Open the bytes `r` of `meta`; `None` if a data file vanished (a concurrent overwrite).
async fn open_body(b: &Arc<Bucket>, key: &ObjectKey, meta: &Arc<ObjectMeta>, r: std::ops::Range<u64>) -> Result<Option<BodyStream>> {
    if let Some(at) = meta.inline_at {
        let path = b.meta_path(key.as_str());
        let Some(bytes) = blocking(move || fsio::read_opt(&path)).await? else {
            return Ok(None);
        };
        let file = MetaFile::decode(bytes.into(), &b.meta_path(key.as_str()))?;
        let Some(v) = file.record.versions.first() else { return Ok(None) };
        if v.etag != meta.etag || v.inline_at != Some(at) {
            return Ok(None);
        }
        let slice = file.blob.slice((at + r.start) as usize..(at + r.end) as usize);
        return Ok(Some(Box::pin(futures::stream::once(futures::future::ready(Ok(slice))))));
    }
    // The (file, offset, len) pieces covering the range, in order.
    let mut wanted = Vec::new();
    let mut part_start = 0u64;
    for p in &meta.parts {
        let part_end = part_start + p.size;
        if part_end > r.start && part_start < r.end {
            let from = r.start.max(part_start) - part_start;
            let to = r.end.min(part_end) - part_start;
            let id = p.data_id.clone().ok_or_else(|| Error::Corrupt {
                path: b.meta_path(key.as_str()),
                reason: "part without data".into(),
            })?;
            wanted.push((b.data_path(&id), from, to - from));
        }
        part_start = part_end;
    }
    // A small range (a Parquet footer, a column chunk, a sample) is opened and read in one
    // trip to the blocking pool: each trip costs as much as reading a few KiB from cache.
    let total: u64 = wanted.iter().map(|(_, _, len)| len).sum();
    if total <= IO_CHUNK as u64 {
        let read = blocking(move || {
            let mut buf = Vec::with_capacity(total as usize);
            for (path, off, len) in wanted {
                let f = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(Error::Io {
                            context: "open",
                            path,
                            source: e,
                        });
                    }
                };
                let at = buf.len();
                buf.resize(at + len as usize, 0);
                f.read_exact_at(&mut buf[at..], off).ctx("read", &path)?;
            }
            Ok(Some(Bytes::from(buf)))
        })
        .await?;
        return Ok(read.map(|b| -> BodyStream { Box::pin(futures::stream::once(futures::future::ready(Ok(b)))) }));
    }
    let opened = blocking(move || {
        let mut out = Vec::with_capacity(wanted.len());
        for (path, off, len) in wanted {
            match File::open(&path) {
                Ok(f) => out.push((Arc::new(f), off, len)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => {
                    return Err(Error::Io {
                        context: "open",
                        path,
                        source: e,
                    });
                }
            }
        }
        Ok(Some(out))
    })
    .await?;
    let Some(pieces) = opened else { return Ok(None) };
    let stream = futures::stream::iter(pieces).flat_map(|(f, off, len)| {
        futures::stream::unfold((f, off, len), |(f, off, left)| async move {
            if left == 0 {
                return None;
            }
            let n = left.min(IO_CHUNK as u64) as usize;
            let f2 = f.clone();
            let res = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                f2.read_exact_at(&mut buf, off).map(|()| Bytes::from(buf))
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            match res {
                Ok(bytes) => Some((Ok(bytes), (f, off + n as u64, left - n as u64))),
                Err(e) => Some((Err(e), (f, off, 0))),
            }
        })
    });
    Ok(Some(Box::pin(stream)))
}
