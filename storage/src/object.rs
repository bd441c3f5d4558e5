//! Object writes and reads. A write is two steps: [`Store::stage`] streams the body to a new
//! data file (or memory, when small) while hashing it, and a commit makes it visible by
//! atomically renaming its metadata file into place. Between the two the caller checks
//! digests, including those that arrive in trailers after the body.

use crate::buckets::BucketConfig;
use crate::checksum::{BodyHasher, Checksum, ChecksumAlgorithm};
use crate::error::{Error, Result};
use crate::fsio::blocking;
use crate::index::Batch;
use crate::listing::{self, ListPage, ListQuery};
use crate::meta::{ObjectAttrs, ObjectMeta, PartMeta, Versioning};
use crate::names::{BucketName, ObjectKey, VersionId};
use crate::shard_io::{self, ShardError, ShardWriter};
use crate::store::{Bucket, Inner, Store};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use std::fs::File;
use std::sync::Arc;
use std::time::SystemTime;

/// An object body: a stream of chunks, shareable across threads as HTTP bodies must be.
pub type BodyStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static>>;

/// Size of the buffers bodies are written and read in.
const IO_CHUNK: usize = 1024 * 1024;

/// A body written to the store but not yet visible under any key.
/// Dropping it without committing deletes its data.
pub struct StagedData {
    inner: Arc<Inner>,
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

    /// Hand the body's shard files over to the caller (encoding them first if the body was
    /// kept in memory); the staged value no longer deletes them on drop.
    pub(crate) async fn take_data_file(&mut self) -> Result<String> {
        if let Some(id) = self.data_id.take() {
            return Ok(id);
        }
        let id = crate::names::random_hex();
        let bytes = std::mem::take(&mut self.inline);
        let (inner, b, id2) = (self.inner.clone(), self.bucket.clone(), id.clone());
        blocking(move || {
            let mut w = ShardWriter::new(inner.layout, create_shard_files(&inner, &b, &id2))?;
            let io = &inner.io;
            let written = w.write(io, &bytes).and_then(|()| w.finish(io, inner.opts.fsync).map(|_| ()));
            if let Err(e) = written {
                b.remove_data(&id2);
                return Err(e.into());
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
            self.bucket.remove_data(&id);
        }
    }
}

impl From<ShardError> for Error {
    fn from(e: ShardError) -> Self {
        match e {
            ShardError::WriteQuorum { ok, total, need } => Error::Quorum {
                op: "write data",
                ok,
                need,
                detail: format!("{} of {total} drives failed or are offline", total - ok),
            },
            ShardError::Decode {
                source: crate::erasure::ErasureError::TooFewShards { have, need },
                block,
            } => Error::Quorum {
                op: "read data",
                ok: have,
                need,
                detail: format!("block {block} has too few intact shards"),
            },
            other => Error::Io {
                context: "shard I/O",
                path: Default::default(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}

/// Create data `id`'s shard files, in shard order (`None` for a drive that is offline or
/// refused the file).
pub(crate) fn create_shard_files(inner: &Inner, b: &Bucket, id: &str) -> Vec<Option<File>> {
    let n = inner.layout.data() + inner.layout.parity();
    (0..n)
        .map(|i| {
            let d = inner.drive_of_shard(id, i);
            if !inner.drives[d].online {
                return None;
            }
            let path = b.data_path(d, id);
            match std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot create shard file");
                    None
                }
            }
        })
        .collect()
}

/// Open data `id`'s shard files, in shard order; the number found is returned too.
pub(crate) fn open_shard_files(inner: &Inner, b: &Bucket, id: &str) -> (Vec<Option<File>>, usize) {
    let n = inner.layout.data() + inner.layout.parity();
    let files: Vec<Option<File>> = (0..n)
        .map(|i| {
            let d = inner.drive_of_shard(id, i);
            if !inner.drives[d].online {
                return None;
            }
            File::open(b.data_path(d, id)).ok()
        })
        .collect();
    let found = files.iter().filter(|f| f.is_some()).count();
    (files, found)
}

/// Conditions a write must meet at commit time (`If-Match`, `If-None-Match`).
#[derive(Clone, Debug, Default)]
pub struct WriteCondition {
    /// The current object must exist and have this ETag (`*`: just exist).
    pub if_match: Option<String>,
    /// The current object must not have this ETag (`*`: the key must not exist).
    pub if_none_match: Option<String>,
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
        if let (Some(want), Some(cur)) = (&self.if_none_match, current)
            && (want == "*" || want.trim_matches('"') == cur.etag)
        {
            return Err(Error::PreconditionFailed("If-None-Match"));
        }
        Ok(())
    }
}

/// Conditions a delete must meet (`If-Match`, `x-amz-if-match-size`,
/// `x-amz-if-match-last-modified-time`, and their DeleteObjects twins). Deleting what does
/// not exist succeeds whatever the condition; a delete marker meets only `If-Match: *`.
#[derive(Clone, Debug, Default)]
pub struct DeleteCondition {
    /// The ETag the target must have (`*`: just exist).
    pub if_match: Option<String>,
    pub size: Option<u64>,
    /// Last-Modified in whole Unix seconds (the header's precision).
    pub last_modified_secs: Option<i64>,
}

impl DeleteCondition {
    fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.size.is_none() && self.last_modified_secs.is_none()
    }

    pub(crate) fn check(&self, target: Option<&ObjectMeta>) -> Result<()> {
        let Some(m) = target else { return Ok(()) };
        let failed = |what| Err(Error::PreconditionFailed(what));
        if m.delete_marker {
            return match (&self.if_match, self.size, self.last_modified_secs) {
                (Some(e), None, None) if e == "*" => Ok(()),
                _ => failed("If-Match"),
            };
        }
        if let Some(e) = &self.if_match
            && e != "*"
            && e.trim_matches('"') != m.etag
        {
            return failed("If-Match");
        }
        if self.size.is_some_and(|n| n != m.size) {
            return failed("x-amz-if-match-size");
        }
        let secs = m
            .last_modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if self.last_modified_secs.is_some_and(|t| t != secs) {
            return failed("x-amz-if-match-last-modified-time");
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
    /// in memory (they are stored inline at commit); larger ones are erasure coded into
    /// shard files on every drive, synced before this returns. `expected_len` (the declared
    /// length) is enforced.
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
        let inner = self.inner.clone();
        let opts = &inner.opts;
        let limit = opts.max_put_size;
        if expected_len.is_some_and(|l| l > limit) {
            return Err(Error::EntityTooLarge { limit });
        }
        let mut buf = BytesMut::new();
        let mut total: u64 = 0;
        // The writer and hasher travel to an I/O thread with each 1 MiB, so hashing,
        // encoding and disk I/O overlap with receiving the next chunk.
        let mut state: Option<(ShardWriter, BodyHasher)> = None;
        let mut hasher = Some(BodyHasher::new(algorithm));
        let mut pending: Option<tokio::task::JoinHandle<Result<(ShardWriter, BodyHasher)>>> = None;
        let mut staged = StagedData {
            inner: inner.clone(),
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
            if staged.data_id.is_none() && buf.len() > opts.inline_threshold {
                let id = crate::names::random_hex();
                staged.data_id = Some(id.clone());
                let (i2, b2) = (inner.clone(), b.clone());
                let w = blocking(move || Ok(ShardWriter::new(i2.layout, create_shard_files(&i2, &b2, &id))?)).await?;
                state = Some((w, hasher.take().expect("hasher is here")));
            }
            if staged.data_id.is_some() && buf.len() >= IO_CHUNK {
                let bytes = buf.split().freeze();
                let (w, h) = match pending.take() {
                    Some(t) => join(t).await?,
                    None => state.take().expect("writer is here"),
                };
                let i2 = inner.clone();
                pending = Some(tokio::task::spawn_blocking(move || {
                    let (mut w, mut h) = (w, h);
                    // MD5 (~0.6 GiB/s) runs beside encoding and writing instead of before it.
                    let written = std::thread::scope(|s| {
                        let hashing = s.spawn(|| h.update(&bytes));
                        let written = w.write(&i2.io, &bytes);
                        hashing
                            .join()
                            .map_err(|_| ShardError::Io(std::io::Error::other("hashing thread panicked")))?;
                        written
                    });
                    written?;
                    Ok((w, h))
                }));
            }
        }
        if expected_len.is_some_and(|l| total != l) {
            return Err(Error::IncompleteBody(format!(
                "got {total} of the declared {} bytes",
                expected_len.unwrap_or(0)
            )));
        }
        match staged.data_id {
            None => {
                let mut h = hasher.take().expect("hasher is here");
                h.update(&buf);
                let (md5, checksum) = h.finalize();
                staged.inline = buf.freeze();
                staged.md5 = md5;
                staged.checksum = checksum;
            }
            Some(_) => {
                let (w, h) = match pending.take() {
                    Some(t) => join(t).await?,
                    None => state.take().expect("writer is here"),
                };
                let rest = buf.freeze();
                let i2 = inner.clone();
                let (md5, checksum) = blocking(move || {
                    let (mut w, mut h) = (w, h);
                    h.update(&rest);
                    w.write(&i2.io, &rest)?;
                    w.finish(&i2.io, i2.opts.fsync)?;
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
            delete_marker: false,
            upload_id: None,
            order: 0,
        };
        self.commit_meta(&b, key, meta, inline, cond, DataFrom::Staged).await
    }

    /// Write `meta` as the newest version of `key` under the key's lock (its version id
    /// follows the bucket's versioning state), then delete the data of the versions it
    /// replaced. On failure the new version's data is deleted only when it was staged (a
    /// multipart upload keeps its parts so the client can retry).
    pub(crate) async fn commit_meta(
        &self,
        b: &Arc<Bucket>,
        key: &ObjectKey,
        mut meta: ObjectMeta,
        blob: Bytes,
        cond: &WriteCondition,
        from: DataFrom,
    ) -> Result<Arc<ObjectMeta>> {
        let (owns_data, also) = match from {
            DataFrom::Staged => (true, Batch::new()),
            DataFrom::Upload(removal) => (false, removal),
        };
        let _guard = b.stripe(key.as_str()).lock().await;
        let entry = match b.check_live().and_then(|()| self.inner.entry(b, key.as_str())) {
            Ok(e) => e,
            Err(e) => {
                if owns_data {
                    drop_data(b, &meta);
                }
                return Err(e);
            }
        };
        if let Err(e) = cond.check(entry.as_ref().and_then(|e| e.current()).map(|m| &**m)) {
            if owns_data {
                drop_data(b, &meta);
            }
            return Err(e);
        }
        meta.version_id = match b.versioning() {
            Versioning::Enabled => VersionId::generate().into_option(),
            Versioning::Unversioned | Versioning::Suspended => None,
        };
        // Without versioning the new version replaces the null one; others stay.
        let old = entry.map(|e| e.plain()).unwrap_or_default();
        let (kept, removed): (Vec<ObjectMeta>, Vec<ObjectMeta>) =
            old.into_iter().partition(|v| v.version_id.is_some() || meta.version_id.is_some());
        let written = self.write_versions(b, key, Some((meta.clone(), blob)), kept, &removed, also).await;
        let versions = match written {
            Ok(v) => v,
            Err(e) => {
                // Not dropped: a commit that failed may still have taken effect (on the
                // drives that took it, or from a log record that reached the disk before
                // its flush failed), and then the version needs its data. The sweep of
                // unreferenced shard files at the next start removes it otherwise.
                if owns_data && meta.data_ids().next().is_some() {
                    tracing::warn!(bucket = %b.name, key = key.as_str(), error = %e, "metadata commit failed; its shard files stay for the orphan sweep");
                }
                return Err(e);
            }
        };
        let newest = Arc::new(versions[0].clone());
        drop(_guard);
        for old in &removed {
            drop_data(b, old);
        }
        Ok(newest)
    }

    /// Commit `key`'s versions as `first` (a new version with its inline bytes) followed by
    /// `kept` (existing versions), removing `removed`, to the index of every current drive
    /// (one group commit per drive, shared with concurrent writers). Returns the versions
    /// as written; `also` commits with them. Caller holds the key's lock.
    async fn write_versions(
        &self,
        b: &Arc<Bucket>,
        key: &ObjectKey,
        first: Option<(ObjectMeta, Bytes)>,
        kept: Vec<ObjectMeta>,
        removed: &[ObjectMeta],
        also: Batch,
    ) -> Result<Vec<ObjectMeta>> {
        let first = first.as_ref().map(|(m, bytes)| (m.clone(), &bytes[..]));
        let (mut batch, versions) = crate::versions::change(&b.name, key.as_str(), first, kept, removed);
        batch.extend(also);
        self.inner.commit(batch).await?;
        Ok(versions)
    }

    /// Change the attributes (tags, say) of one version of `key` (the current one when
    /// `version` is `None`) in place: data and Last-Modified stay.
    pub async fn update_attrs(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionId>,
        change: impl FnOnce(&mut ObjectAttrs) + Send + 'static,
    ) -> Result<Arc<ObjectMeta>> {
        let b = self.bucket(bucket)?;
        let _guard = b.stripe(key.as_str()).lock().await;
        b.check_live()?;
        let target = resolve_version(&self.inner, &b, bucket, key, version)?;
        // Without a version named, the target is the newest; else ask the index.
        let newest = version.is_none()
            || self
                .inner
                .latest_version(&b, key.as_str())?
                .is_some_and(|n| n.order == target.order);
        let mut v = (*target).clone();
        change(&mut v.attrs);
        self.inner
            .commit(crate::versions::rewrite(&b.name, key.as_str(), &v, newest))
            .await?;
        Ok(Arc::new(v))
    }

    /// The metadata of `key` (its current version, or `version`).
    pub fn head_object(&self, bucket: &BucketName, key: &ObjectKey, version: Option<&VersionId>) -> Result<Arc<ObjectMeta>> {
        let b = self.bucket(bucket)?;
        resolve_version(&self.inner, &b, bucket, key, version)
    }

    /// Open `key` (its current version, or `version`) for reading `range`. The shard files
    /// are opened before this returns, so a concurrent overwrite cannot pull them away
    /// mid-stream.
    pub async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionId>,
        range: ReadRange,
    ) -> Result<ObjectReader> {
        let b = self.bucket(bucket)?;
        // A concurrent overwrite may delete the data between the index lookup and the open;
        // the retry then sees the new version.
        for _ in 0..8 {
            let meta = resolve_version(&self.inner, &b, bucket, key, version)?;
            let (r, partial) = resolve_range(&meta, range)?;
            match open_body(&self.inner, &b, key, &meta, r.clone()).await? {
                Some(body) => {
                    return Ok(ObjectReader {
                        meta,
                        range: r,
                        partial,
                        body,
                    });
                }
                None => {
                    let same = resolve_version(&self.inner, &b, bucket, key, version)
                        .is_ok_and(|m| m.order == meta.order && m.version_id == meta.version_id);
                    if same {
                        return Err(Error::Quorum {
                            op: "read data",
                            ok: 0,
                            need: self.inner.read_quorum(),
                            detail: "too few shard files could be opened".into(),
                        });
                    }
                }
            }
        }
        Err(Error::Io {
            context: "read (object kept changing)",
            path: key.as_str().into(),
            source: std::io::Error::other("too many concurrent overwrites"),
        })
    }

    /// Delete `key` as S3 does: without `version`, an unversioned bucket removes the
    /// object and a versioned one adds a delete marker; with `version`, that version is
    /// removed for good. Deleting what does not exist succeeds.
    pub async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey, version: Option<&VersionId>) -> Result<DeleteOutcome> {
        self.delete_object_if(bucket, key, version, &DeleteCondition::default()).await
    }

    /// [`Store::delete_object`], when `cond` holds for what the delete removes (the
    /// version named, else the newest version), judged under the key's lock.
    pub async fn delete_object_if(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionId>,
        cond: &DeleteCondition,
    ) -> Result<DeleteOutcome> {
        let b = self.bucket(bucket)?;
        let _guard = b.stripe(key.as_str()).lock().await;
        b.check_live()?;
        let entry = self.inner.entry(&b, key.as_str())?;
        if !cond.is_empty() {
            let target = match (&entry, version) {
                (None, _) => None,
                (Some(e), None) => Some(e.latest()),
                (Some(e), Some(v)) => e.find(v.as_option()),
            };
            cond.check(target.map(|m| &**m))?;
        }
        let old = entry.as_ref().map(|e| e.plain()).unwrap_or_default();
        let state = b.versioning();
        let (first, kept, removed, outcome) = match version {
            None if state == Versioning::Unversioned => {
                if old.is_empty() {
                    return Ok(DeleteOutcome::default());
                }
                (None, Vec::new(), old, DeleteOutcome::default())
            }
            None => {
                let marker = ObjectMeta {
                    version_id: match state {
                        Versioning::Enabled => VersionId::generate().into_option(),
                        _ => None,
                    },
                    size: 0,
                    etag: String::new(),
                    last_modified: SystemTime::now(),
                    attrs: ObjectAttrs::default(),
                    checksum: None,
                    multipart: false,
                    parts: Vec::new(),
                    inline_at: None,
                    delete_marker: true,
                    upload_id: None,
                    order: 0,
                };
                let outcome = DeleteOutcome {
                    version_id: Some(marker.version_wire().to_owned()),
                    delete_marker: true,
                };
                let null = marker.version_id.is_none();
                let (kept, removed): (Vec<ObjectMeta>, Vec<ObjectMeta>) = old.into_iter().partition(|v| !(null && v.version_id.is_none()));
                (Some((marker, Bytes::new())), kept, removed, outcome)
            }
            Some(v) => {
                let want = v.as_option();
                let Some(found) = old.iter().position(|m| m.version_id.as_deref() == want) else {
                    return Ok(DeleteOutcome {
                        version_id: Some(v.wire().to_owned()),
                        delete_marker: false,
                    });
                };
                let mut kept = old;
                let gone = kept.remove(found);
                let outcome = DeleteOutcome {
                    version_id: Some(v.wire().to_owned()),
                    delete_marker: gone.delete_marker,
                };
                (None, kept, vec![gone], outcome)
            }
        };
        self.write_versions(&b, key, first, kept, &removed, Batch::new()).await?;
        drop(_guard);
        for r in &removed {
            drop_data(&b, r);
        }
        Ok(outcome)
    }

    /// One page of a bucket listing (current versions; delete-marked keys are hidden).
    pub fn list_objects(&self, bucket: &BucketName, query: &ListQuery<'_>) -> Result<ListPage<Arc<ObjectMeta>>> {
        let b = self.bucket(bucket)?;
        let src = crate::versions::CurrentKeys::new(&self.inner, &b.name, query);
        listing::list(&src, query)
    }

    /// One page of every version of every key (ListObjectVersions): keys in order, each
    /// key's versions newest first, `max` versions and common prefixes in all. Resumes
    /// after `key_marker`, or within it after `version_marker`.
    pub fn list_versions(&self, bucket: &BucketName, query: &ListQuery<'_>, version_marker: Option<&VersionId>) -> Result<VersionPage> {
        let b = self.bucket(bucket)?;
        crate::versions::list_versions(&self.inner, &b, query, version_marker.map(VersionId::as_option))
    }

    /// Whether the bucket holds no objects (no versions or delete markers either).
    pub fn bucket_is_empty(&self, bucket: &BucketName) -> Result<bool> {
        let b = self.bucket(bucket)?;
        self.inner.bucket_is_empty(&b)
    }

    /// Set or remove the bucket's policy document ([`Store::set_bucket_config`]).
    pub async fn set_bucket_policy(&self, bucket: &BucketName, policy: Option<String>) -> Result<()> {
        self.set_bucket_config(bucket, BucketConfig::Policy, policy).await
    }
}

/// Where a new version's data comes from.
pub(crate) enum DataFrom {
    /// A staged body, which the commit owns: deleted if the commit fails.
    Staged,
    /// A multipart upload's parts: they stay the upload's if the commit fails; else the
    /// batch (the upload's removal) commits with the version.
    Upload(Batch),
}

/// What a DELETE did, for its response headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The version id to report (`x-amz-version-id`), if any.
    pub version_id: Option<String>,
    /// Whether a delete marker was created, or the version removed was one.
    pub delete_marker: bool,
}

/// One entry of a ListObjectVersions page.
#[derive(Clone, Debug)]
pub enum VersionItem {
    /// A version or delete marker of `key`; `latest` when it is the key's newest. `meta`
    /// holds what a listing shows (no parts, no attributes but storage class and owner).
    Version {
        key: String,
        meta: Arc<ObjectMeta>,
        latest: bool,
    },
    CommonPrefix(String),
}

/// A page of ListObjectVersions: versions (and delete markers) and common prefixes, in order.
#[derive(Clone, Debug, Default)]
pub struct VersionPage {
    pub items: Vec<VersionItem>,
    pub truncated: bool,
}

impl VersionPage {
    /// Where the next page starts: (key marker, version id marker) after the last item.
    pub fn next_markers(&self) -> Option<(String, Option<String>)> {
        if !self.truncated {
            return None;
        }
        match self.items.last()? {
            VersionItem::Version { key, meta, .. } => Some((key.clone(), Some(meta.version_wire().to_owned()))),
            VersionItem::CommonPrefix(p) => Some((p.clone(), None)),
        }
    }
}

/// The version `version` of `key` (the current one when `None`), or the S3 error a read of
/// it gets: NoSuchKey, NoSuchVersion, or a delete marker.
fn resolve_version(
    inner: &Inner,
    b: &Bucket,
    bucket: &BucketName,
    key: &ObjectKey,
    version: Option<&VersionId>,
) -> Result<Arc<ObjectMeta>> {
    let no_key = || Error::NoSuchKey {
        bucket: bucket.to_string(),
        key: key.to_string(),
    };
    match version {
        None => {
            let latest = inner.latest_version(b, key.as_str())?.ok_or_else(no_key)?;
            if latest.delete_marker {
                return Err(Error::DeleteMarker {
                    version_id: latest.version_wire().to_owned(),
                    requested: false,
                });
            }
            Ok(Arc::new(latest))
        }
        Some(v) => {
            let entry = inner.entry(b, key.as_str())?;
            let Some(m) = entry.as_ref().and_then(|e| e.find(v.as_option())).cloned() else {
                return Err(match v.as_option() {
                    None if entry.is_none() => no_key(),
                    _ => Error::NoSuchVersion {
                        key: key.to_string(),
                        version: v.wire().to_owned(),
                    },
                });
            };
            if m.delete_marker {
                return Err(Error::DeleteMarker {
                    version_id: m.version_wire().to_owned(),
                    requested: true,
                });
            }
            Ok(m)
        }
    }
}

fn drop_data(b: &Bucket, meta: &ObjectMeta) {
    for id in meta.data_ids() {
        b.remove_data(id);
    }
}

async fn join<T>(t: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    t.await.map_err(|e| Error::Io {
        context: "write task",
        path: Default::default(),
        source: std::io::Error::other(e.to_string()),
    })?
}

fn once(bytes: Bytes) -> BodyStream {
    Box::pin(futures::stream::once(futures::future::ready(Ok(bytes))))
}

/// One part's slice of a read: its data id, the part's size and the bytes wanted of it.
struct Piece {
    id: String,
    size: u64,
    range: std::ops::Range<u64>,
}

/// Open the bytes `r` of `meta`; `None` if its data vanished (a concurrent overwrite).
async fn open_body(
    inner: &Arc<Inner>,
    b: &Arc<Bucket>,
    key: &ObjectKey,
    meta: &Arc<ObjectMeta>,
    r: std::ops::Range<u64>,
) -> Result<Option<BodyStream>> {
    if meta.inline_at.is_some() {
        // A version whose row is gone was replaced meanwhile: the caller retries.
        let Some(bytes) = inner.inline_bytes(b, key.as_str(), meta)? else {
            return Ok(None);
        };
        return Ok(Some(once(Bytes::from(bytes).slice(r.start as usize..r.end as usize))));
    }
    let mut pieces = Vec::new();
    let mut part_start = 0u64;
    for p in &meta.parts {
        let part_end = part_start + p.size;
        if part_end > r.start && part_start < r.end {
            let from = r.start.max(part_start) - part_start;
            let to = r.end.min(part_end) - part_start;
            let id = p.data_id.clone().ok_or_else(|| Error::Corrupt {
                path: key.as_str().into(),
                reason: "part without data".into(),
            })?;
            pieces.push(Piece {
                id,
                size: p.size,
                range: from..to,
            });
        }
        part_start = part_end;
    }
    let heal = {
        let (inner, bucket, key) = (inner.clone(), b.name.clone(), key.to_string());
        move || inner.queue_heal(&bucket, &key)
    };
    // A small range (a Parquet footer, a column chunk, a sample) is opened, read and
    // verified in one trip to an I/O thread: each trip costs as much as reading a few KiB.
    let total: u64 = pieces.iter().map(|p| p.range.end - p.range.start).sum();
    let need = inner.read_quorum();
    if total <= IO_CHUNK as u64 {
        let (i2, b2) = (inner.clone(), b.clone());
        let read = blocking(move || {
            let mut out: Vec<Bytes> = Vec::with_capacity(pieces.len());
            let mut degraded = false;
            for p in pieces {
                let (files, found) = open_shard_files(&i2, &b2, &p.id);
                if found < need {
                    return Ok(None);
                }
                let (bytes, report) = shard_io::read_range(&i2.io, i2.layout, &files, p.size, p.range)?;
                degraded |= !report.bad_shards.is_empty() || found < files.len();
                out.push(bytes);
            }
            let joined = match out.len() {
                1 => out.pop().expect("one piece"),
                _ => Bytes::from(out.concat()),
            };
            Ok(Some((joined, degraded)))
        })
        .await?;
        let Some((bytes, degraded)) = read else { return Ok(None) };
        if degraded {
            heal();
        }
        return Ok(Some(once(bytes)));
    }
    let (i2, b2) = (inner.clone(), b.clone());
    let opened = blocking(move || {
        let mut out = Vec::with_capacity(pieces.len());
        let mut degraded = false;
        for p in pieces {
            let (files, found) = open_shard_files(&i2, &b2, &p.id);
            if found < need {
                return Ok(None);
            }
            degraded |= found < files.len();
            out.push((Arc::new(files), p.size, p.range));
        }
        Ok(Some((out, degraded)))
    })
    .await?;
    let Some((opened, degraded)) = opened else { return Ok(None) };
    if degraded {
        heal();
    }
    let (io, layout) = (inner.io.clone(), inner.layout);
    let bs = layout.block_size() as u64;
    let stream = futures::stream::iter(opened).flat_map(move |(files, size, range)| {
        let (io, heal) = (io.clone(), heal.clone());
        futures::stream::unfold((files, range.start), move |(files, pos)| {
            let (io, heal) = (io.clone(), heal.clone());
            async move {
                if pos >= range.end {
                    return None;
                }
                // Whole blocks (1 MiB) at a time, so a step never straddles two blocks.
                let end = range.end.min((pos / bs + 1) * bs).max(pos + 1).min(range.end);
                let f2 = files.clone();
                let res = tokio::task::spawn_blocking(move || shard_io::read_range(&io, layout, &f2, size, pos..end))
                    .await
                    .unwrap_or_else(|e| Err(ShardError::Io(std::io::Error::other(e.to_string()))));
                match res {
                    Ok((bytes, report)) => {
                        if !report.bad_shards.is_empty() {
                            heal();
                        }
                        Some((Ok(bytes), (files, end)))
                    }
                    Err(e) => Some((Err(std::io::Error::other(Error::from(e).to_string())), (files, range.end))),
                }
            }
        })
    });
    Ok(Some(Box::pin(stream)))
}
