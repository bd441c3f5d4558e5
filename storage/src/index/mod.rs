//! The per-drive metadata index: one ordered, crash-safe key-value store on each drive
//! holding all of that drive's metadata (see `storage/FORMAT.md`, "The index").
//!
//! - [`engine`]: the small [`Engine`] trait and its redb implementation.
//! - [`keys`]: the byte layouts of the tables' keys.
//! - [`wal`]: the write-ahead log that makes a commit durable with one flush.
//! - This file: values sealed with a checksum over key and value (a flipped byte, a torn
//!   page the engine missed, or a value under the wrong key is [`Error::Corrupt`], never
//!   served), and group commit: concurrent writers' batches share one transaction and
//!   one sync, on a committer thread per drive.

pub mod engine;
pub mod keys;
pub mod set;
#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
pub mod wal;

pub use engine::{Engine, EngineError, Op, Redb, Table};
pub use set::{CatchUp, IndexSet};

use crate::error::{Error, Result};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Bound on batches waiting for a drive's committer; writers wait when it is full.
pub const DEFAULT_COMMIT_QUEUE: usize = 4096;
/// Most batches one transaction takes.
const MAX_GROUP: usize = 1024;
/// Most bytes (keys and values) one transaction takes beyond its first batch: bounds a
/// group's log record, the memory it takes, and so the log file's size.
const MAX_GROUP_BYTES: usize = 8 << 20;

/// A sealed value: the payload, then a CRC32C of the table's name, the key and the payload.
fn seal(table: Table, key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 4);
    v.extend_from_slice(payload);
    v.extend_from_slice(&crc(table, key, payload).to_le_bytes());
    v
}

fn crc(table: Table, key: &[u8], payload: &[u8]) -> u32 {
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    d.update(table.name().as_bytes());
    d.update(&(key.len() as u32).to_le_bytes());
    d.update(key);
    d.update(payload);
    d.finalize() as u32
}

/// Check a stored value; its payload.
fn unseal<'a>(path: &std::path::Path, table: Table, key: &[u8], value: &'a [u8]) -> Result<&'a [u8]> {
    let corrupt = |reason: &str| Error::Corrupt {
        path: path.join(table.name()),
        reason: reason.to_owned(),
    };
    let Some(split) = value.len().checked_sub(4) else {
        return Err(corrupt("value shorter than its checksum"));
    };
    let (payload, sum) = value.split_at(split);
    if u32::from_le_bytes(sum.try_into().expect("4 bytes")) != crc(table, key, payload) {
        return Err(corrupt("value checksum mismatch"));
    }
    Ok(payload)
}

/// A batch of changes to one drive's index, applied atomically. Values are sealed as
/// they are added.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, table: Table, key: Vec<u8>, payload: &[u8]) -> &mut Self {
        let v = seal(table, &key, payload);
        self.ops.push(Op::Put(table, key, v));
        self
    }

    pub fn delete(&mut self, table: Table, key: Vec<u8>) -> &mut Self {
        self.ops.push(Op::Delete(table, key));
        self
    }

    /// Remove every key in `[from, to)`.
    pub fn delete_range(&mut self, table: Table, from: Vec<u8>, to: Vec<u8>) -> &mut Self {
        self.ops.push(Op::DeleteRange(table, from, to));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Bytes of keys and values the batch carries.
    pub fn bytes(&self) -> usize {
        self.ops.iter().map(Op::bytes).sum()
    }

    /// Append another batch's operations.
    pub fn extend(&mut self, other: Batch) -> &mut Self {
        self.ops.extend(other.ops);
        self
    }
}

struct Pending {
    batch: Batch,
    done: oneshot::Sender<std::result::Result<(), Arc<EngineError>>>,
}

/// One drive's index: reads straight from the engine, writes through the committer.
pub struct Index {
    engine: Arc<dyn Engine>,
    path: PathBuf,
    /// `None` only while dropping.
    queue: Option<mpsc::Sender<Pending>>,
    committer: Option<std::thread::JoinHandle<()>>,
    groups: Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for Index {
    /// Closing the queue ends the committer after what it holds; joining it releases the
    /// engine (and its file lock) before `drop` returns, so the file can be opened again.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.committer.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

impl Index {
    /// Wrap an engine and start its committer thread (it ends when the `Index` is dropped).
    pub fn new(engine: Arc<dyn Engine>, path: PathBuf, queue_len: usize) -> Result<Self> {
        let (queue, rx) = mpsc::channel(queue_len.max(1));
        let groups = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (e2, g2) = (engine.clone(), groups.clone());
        let committer = std::thread::Builder::new()
            .name("quarry-index-commit".into())
            .spawn(move || committer(e2, rx, g2))
            .map_err(|source| Error::Io {
                context: "starting the index committer for",
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            engine,
            path,
            queue: Some(queue),
            committer: Some(committer),
            groups,
        })
    }

    /// Open (or create) the redb index file at `path`.
    pub fn open_redb(path: PathBuf, cache_bytes: usize, queue_len: usize) -> Result<Self> {
        let engine = Redb::open(&path, cache_bytes).map_err(Error::from)?;
        Self::new(Arc::new(engine), path, queue_len)
    }

    /// Transactions committed so far (each may carry many batches).
    pub fn groups_committed(&self) -> u64 {
        self.groups.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One value, verified.
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.engine.get(table, key)? {
            None => Ok(None),
            Some(mut v) => {
                let n = unseal(&self.path, table, key, &v)?.len();
                v.truncate(n);
                Ok(Some(v))
            }
        }
    }

    /// Visit `[from, to)` ascending from one snapshot, each value verified, until `visit`
    /// returns `Ok(false)`.
    pub fn scan(
        &self,
        table: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut failed = None;
        self.engine.scan(table, from, to, &mut |k, v| {
            let r = unseal(&self.path, table, k, v).and_then(|p| visit(k, p));
            match r {
                Ok(go_on) => go_on,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// The last key of a table and its verified value.
    pub fn last(&self, table: Table) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        match self.engine.last(table)? {
            None => Ok(None),
            Some((k, mut v)) => {
                let n = unseal(&self.path, table, &k, &v)?.len();
                v.truncate(n);
                Ok(Some((k, v)))
            }
        }
    }

    /// Every key starting with `prefix`, at most `limit`, as owned pairs.
    pub fn scan_prefix(&self, table: Table, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = keys::prefix_successor(prefix);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.scan(table, Bound::Included(prefix), upper, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Commit a batch durably, sharing the transaction and its sync with whatever other
    /// batches are waiting.
    pub async fn commit(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        let queue = self.queue.as_ref().ok_or_else(|| self.stopped())?;
        queue.send(Pending { batch, done }).await.map_err(|_| self.stopped())?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::IndexCommit {
                path: self.path.clone(),
                source: e,
            }),
            Err(_) => Err(self.stopped()),
        }
    }

    /// `commit` for callers outside the runtime (start-up, migration, heal threads).
    pub fn commit_blocking(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        let queue = self.queue.as_ref().ok_or_else(|| self.stopped())?;
        queue.blocking_send(Pending { batch, done }).map_err(|_| self.stopped())?;
        match wait.blocking_recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::IndexCommit {
                path: self.path.clone(),
                source: e,
            }),
            Err(_) => Err(self.stopped()),
        }
    }

    fn stopped(&self) -> Error {
        Error::Drive(format!("the index committer of {} has stopped", self.path.display()))
    }
}

/// The next group: the carried-over batch or the next to arrive, then whatever is already
/// waiting, up to `MAX_GROUP` batches and `MAX_GROUP_BYTES` (a batch that would pass the
/// bound is carried over to the next group). False when the queue is closed and empty.
fn next_group(rx: &mut mpsc::Receiver<Pending>, carried: &mut Option<Pending>, group: &mut Vec<Pending>) -> bool {
    let Some(first) = carried.take().or_else(|| rx.blocking_recv()) else {
        return false;
    };
    let mut bytes = first.batch.bytes();
    group.push(first);
    while group.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
        match rx.try_recv() {
            Ok(p) => {
                let n = p.batch.bytes();
                if bytes + n > MAX_GROUP_BYTES {
                    *carried = Some(p);
                    break;
                }
                bytes += n;
                group.push(p);
            }
            Err(_) => break,
        }
    }
    true
}

/// Commit each group as one transaction and answer each of its writers. A failed group
/// fails each of its writers: none of their changes applied.
fn committer(engine: Arc<dyn Engine>, mut rx: mpsc::Receiver<Pending>, groups: Arc<std::sync::atomic::AtomicU64>) {
    let mut group: Vec<Pending> = Vec::with_capacity(64);
    let mut carried = None;
    while next_group(&mut rx, &mut carried, &mut group) {
        let batches: Vec<&[Op]> = group.iter().map(|p| p.batch.ops.as_slice()).collect();
        let result = engine.commit(&batches).map_err(Arc::new);
        groups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(error = %e, batches = group.len(), "index commit failed");
        }
        for p in group.drain(..) {
            let _ = p.done.send(result.clone());
        }
    }
}
