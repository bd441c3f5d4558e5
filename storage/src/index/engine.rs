//! The small interface the metadata index needs from an embedded key-value engine, and its
//! redb implementation. Everything above this file (encoding, checksums, group commit)
//! is engine-neutral, so a second engine is one more `impl Engine`.

use super::wal::{self, CHECKPOINT_BYTES, LogFile, Wal};
use std::fmt::Debug;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The index's tables. Each is an ordered map from bytes to bytes; key layouts are in
/// `keys.rs` and `storage/FORMAT.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Bucket name -> bucket record.
    Buckets,
    /// Bucket, configuration kind -> configuration record (policy, ACL, ownership, ...).
    BucketConfigs,
    /// Bucket, key, newest-first order -> one version's metadata (no inline bytes).
    Versions,
    /// Bucket, key -> the listing entry of the key's current version (keys whose latest
    /// version is a delete marker are absent), so a listing never visits old versions.
    Current,
    /// Bucket, key, order (as `Versions`) -> the inline bytes of a small object.
    Inline,
    /// Bucket, key, upload id -> a multipart upload's record.
    Uploads,
    /// Bucket, upload id, part number -> a part's record.
    Parts,
    /// Name -> a configuration document (the identity store).
    Configs,
    /// Name -> the drive's own state (its epoch, which drives were stale since when).
    State,
    /// Commit sequence (big-endian u64) -> what the commit touched: how a drive that
    /// missed commits catches up in time proportional to what it missed.
    Log,
    /// Bucket, data id -> nothing: the shard files committed versions reference, so the
    /// sweep of leftovers from interrupted writes never needs the whole namespace.
    Data,
}

impl Table {
    /// Every table, for creation at open.
    pub const ALL: [Table; 11] = [
        Table::Buckets,
        Table::BucketConfigs,
        Table::Versions,
        Table::Current,
        Table::Inline,
        Table::Uploads,
        Table::Parts,
        Table::Configs,
        Table::State,
        Table::Log,
        Table::Data,
    ];

    /// The table's name in the engine.
    pub fn name(self) -> &'static str {
        match self {
            Table::Buckets => "buckets",
            Table::BucketConfigs => "bucket_configs",
            Table::Versions => "versions",
            Table::Current => "current",
            Table::Inline => "inline",
            Table::Uploads => "uploads",
            Table::Parts => "parts",
            Table::Configs => "configs",
            Table::State => "state",
            Table::Log => "log",
            Table::Data => "data",
        }
    }
}

/// One change of a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put(Table, Vec<u8>, Vec<u8>),
    Delete(Table, Vec<u8>),
    /// Remove every key in `[from, to)`.
    DeleteRange(Table, Vec<u8>, Vec<u8>),
}

impl Op {
    /// The table it changes.
    pub fn table(&self) -> Table {
        match self {
            Op::Put(t, ..) | Op::Delete(t, _) | Op::DeleteRange(t, ..) => *t,
        }
    }

    /// Bytes of keys and values it carries.
    pub fn bytes(&self) -> usize {
        match self {
            Op::Put(_, k, v) | Op::DeleteRange(_, k, v) => k.len() + v.len(),
            Op::Delete(_, k) => k.len(),
        }
    }
}

/// An engine's failure, with its source kept.
#[derive(Debug, thiserror::Error)]
#[error("metadata index {path}: {source}")]
pub struct EngineError {
    pub path: PathBuf,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

pub type EngineResult<T> = std::result::Result<T, EngineError>;

/// An ordered, crash-safe key-value engine. `commit` applies its operations atomically
/// and durably (on stable storage when it returns); reads see the last commit.
pub trait Engine: Send + Sync + Debug + 'static {
    fn get(&self, table: Table, key: &[u8]) -> EngineResult<Option<Vec<u8>>>;

    /// Visit keys from `from` up to `to` (both as bounds), ascending, from one consistent
    /// snapshot, until `visit` returns false.
    fn scan(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> EngineResult<()>;

    /// The last key of `table` and its value.
    fn last(&self, table: Table) -> EngineResult<Option<(Vec<u8>, Vec<u8>)>>;

    /// Apply several writers' batches in one transaction (group commit): all or none.
    fn commit(&self, batches: &[&[Op]]) -> EngineResult<()>;
}

/// redb (pure Rust, copy-on-write B+trees, one file), with commits made durable by a
/// write-ahead log beside it (`wal.rs`) and applied to redb without a sync; a checkpoint
/// (a durable redb commit, quick repair on) every `CHECKPOINT_BYTES` of log.
pub struct Redb {
    db: redb::Database,
    path: PathBuf,
    /// Held by the one committer; `Drop` checkpoints through it.
    wal: Mutex<Wal>,
    checkpoint_bytes: u64,
}

impl Drop for Redb {
    /// A clean close leaves nothing to replay.
    fn drop(&mut self) {
        let wal = self.wal.get_mut().unwrap_or_else(|p| p.into_inner());
        if wal.bytes() > 0
            && let Err(e) = checkpoint(&self.db, &self.path, wal)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "index checkpoint at close failed; the log is replayed at the next open");
        }
    }
}

/// The engine's own bookkeeping, outside `Table::ALL` (so never copied to another drive):
/// the last log record applied.
const APPLIED: redb::TableDefinition<'static, &'static str, u64> = redb::TableDefinition::new("wal_applied");
const APPLIED_KEY: &str = "seq";

fn engine_err(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> EngineError {
    EngineError {
        path: path.to_owned(),
        source: Box::new(e),
    }
}

/// One redb transaction: `durable` ones sync (two-phase, saving the allocator state so a
/// crash needs no full repair); others become durable with the next durable one.
fn write_txn(
    db: &redb::Database,
    path: &Path,
    durable: bool,
    f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
) -> EngineResult<()> {
    let err = |e: redb::Error| engine_err(path, e);
    let mut txn = db.begin_write().map_err(|e| err(e.into()))?;
    if durable {
        txn.set_quick_repair(true);
        txn.set_durability(redb::Durability::Immediate).map_err(|e| err(e.into()))?;
    } else {
        txn.set_durability(redb::Durability::None).map_err(|e| err(e.into()))?;
    }
    match f(&txn) {
        Ok(()) => txn.commit().map_err(|e| err(e.into())),
        Err(e) => {
            let _ = txn.abort();
            Err(err(e))
        }
    }
}

/// Make everything applied so far durable in redb and start the log over. The marker
/// names the last sequence taken, applied or not: a record whose commit failed is never
/// replayed.
fn checkpoint(db: &redb::Database, path: &Path, wal: &mut Wal) -> EngineResult<()> {
    let last = wal.next_seq() - 1;
    write_txn(db, path, true, |txn| {
        txn.open_table(APPLIED)?.insert(APPLIED_KEY, last)?;
        Ok(())
    })?;
    wal.restart();
    Ok(())
}

/// Apply ops to an open transaction.
fn apply(txn: &redb::WriteTransaction, ops: &mut dyn Iterator<Item = &Op>) -> Result<(), redb::Error> {
    let mut open: Vec<(Table, OpenTable<'_>)> = Vec::new();
    for op in ops {
        let table = op.table();
        let i = match open.iter().position(|(t, _)| *t == table) {
            Some(i) => i,
            None => {
                open.push((table, txn.open_table(def(table))?));
                open.len() - 1
            }
        };
        let t = &mut open[i].1;
        match op {
            Op::Put(_, k, v) => {
                t.insert(k.as_slice(), v.as_slice())?;
            }
            Op::Delete(_, k) => {
                t.remove(k.as_slice())?;
            }
            Op::DeleteRange(_, from, to) => {
                t.retain_in::<&[u8], _>(from.as_slice()..to.as_slice(), |_, _| false)?;
            }
        }
    }
    Ok(())
}

impl Debug for Redb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redb").field("path", &self.path).finish()
    }
}

type Def = redb::TableDefinition<'static, &'static [u8], &'static [u8]>;
type OpenTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

fn def(t: Table) -> Def {
    redb::TableDefinition::new(t.name())
}

impl Redb {
    /// Open or create the index file at `path` with a page cache of `cache_bytes`, and
    /// its log beside it (`path` with the extension `wal`).
    pub fn open(path: &Path, cache_bytes: usize) -> EngineResult<Self> {
        let err = |e: redb::Error| engine_err(path, e);
        let db_existed = path.exists();
        let db = redb::Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| err(e.into()))?;
        let wal_path = path.with_extension("wal");
        if !db_existed && wal_path.exists() {
            // A log without its database (a drive whose index file was removed) describes
            // changes to a state that is gone: it is not replayed into a new one.
            tracing::warn!(path = %wal_path.display(), "removing a write-ahead log whose index file is gone");
            std::fs::remove_file(&wal_path).map_err(|e| engine_err(&wal_path, e))?;
        }
        let existed = wal_path.exists();
        // 0600 from the start: it holds what the database holds (the identity store's
        // secrets among it).
        let file = std::os::unix::fs::OpenOptionsExt::mode(&mut std::fs::OpenOptions::new(), 0o600)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&wal_path)
            .map_err(|e| engine_err(&wal_path, e))?;
        if !existed && let Some(dir) = wal_path.parent() {
            // The log's name is durable before any commit relies on it.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| engine_err(dir, e))?;
        }
        Self::init(db, Box::new(file), path)
    }

    /// Open over custom storage for the database and its log (the power-loss tests use a
    /// simulated disk).
    pub fn with_backend(backend: impl redb::StorageBackend, log: impl LogFile, name: &str, cache_bytes: usize) -> EngineResult<Self> {
        let path = PathBuf::from(name);
        let db = redb::Database::builder()
            .set_cache_size(cache_bytes)
            .create_with_backend(backend)
            .map_err(|e| engine_err(&path, redb::Error::from(e)))?;
        Self::init(db, Box::new(log), &path)
    }

    fn init(db: redb::Database, log: Box<dyn LogFile>, path: &Path) -> EngineResult<Self> {
        use redb::ReadableDatabase;
        // Every table exists from the start, so reads never meet a missing one (checked
        // by a read first: an open commits nothing when they do).
        let (all_there, applied) = {
            let txn = db.begin_read().map_err(|e| engine_err(path, redb::Error::from(e)))?;
            let all = Table::ALL.iter().all(|t| txn.open_table(def(*t)).is_ok());
            let applied = match txn.open_table(APPLIED) {
                Ok(t) => t
                    .get(APPLIED_KEY)
                    .map_err(|e| engine_err(path, redb::Error::from(e)))?
                    .map(|g| g.value()),
                Err(_) => None,
            };
            (all && applied.is_some(), applied.unwrap_or(0))
        };
        if !all_there {
            write_txn(&db, path, true, |txn| {
                for t in Table::ALL {
                    txn.open_table(def(t))?;
                }
                use redb::ReadableTable;
                let mut a = txn.open_table(APPLIED)?;
                if a.get(APPLIED_KEY)?.is_none() {
                    a.insert(APPLIED_KEY, 0)?;
                }
                Ok(())
            })?;
        }
        let log_path = path.with_extension("wal");
        let (mut wal, records) = Wal::open(log, applied).map_err(|e| engine_err(&log_path, e))?;
        if !records.is_empty() {
            let started = std::time::Instant::now();
            let n = records.len();
            for r in &records {
                write_txn(&db, path, false, |txn| {
                    apply(txn, &mut r.ops.iter())?;
                    txn.open_table(APPLIED)?.insert(APPLIED_KEY, r.seq)?;
                    Ok(())
                })?;
            }
            checkpoint(&db, path, &mut wal)?;
            tracing::info!(path = %path.display(), records = n, ms = started.elapsed().as_millis() as u64, "index: replayed the write-ahead log");
        } else if wal.bytes() > 0 {
            // Records all applied already (a crash after a checkpoint): start over.
            wal.restart();
        }
        Ok(Self {
            db,
            path: path.to_owned(),
            wal: Mutex::new(wal),
            checkpoint_bytes: CHECKPOINT_BYTES,
        })
    }

    /// Checkpoint after `bytes` of log instead of `CHECKPOINT_BYTES` (tests make it small
    /// to cross many checkpoints).
    pub fn with_checkpoint_bytes(mut self, bytes: u64) -> Self {
        self.checkpoint_bytes = bytes.max(1);
        self
    }

    fn err(&self, e: impl Into<redb::Error>) -> EngineError {
        engine_err(&self.path, e.into())
    }
}

impl Engine for Redb {
    fn get(&self, table: Table, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(def(table)).map_err(|e| self.err(e))?;
        let v = t.get(key).map_err(|e| self.err(e))?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    fn scan(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> EngineResult<()> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(def(table)).map_err(|e| self.err(e))?;
        let range = t.range::<&[u8]>((from, to)).map_err(|e| self.err(e))?;
        for item in range {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if !visit(k.value(), v.value()) {
                break;
            }
        }
        Ok(())
    }

    fn last(&self, table: Table) -> EngineResult<Option<(Vec<u8>, Vec<u8>)>> {
        use redb::{ReadableDatabase, ReadableTable};
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(def(table)).map_err(|e| self.err(e))?;
        let last = t.last().map_err(|e| self.err(e))?;
        Ok(last.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
    }

    /// Log the group and flush it (durable from here), then apply it to redb without a
    /// sync; checkpoint when the log has grown past its bound.
    fn commit(&self, batches: &[&[Op]]) -> EngineResult<()> {
        let mut wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        if wal.failed {
            // The last record's write or apply failed: a checkpoint first, so it is never
            // replayed (a failed commit stays failed after a restart).
            checkpoint(&self.db, &self.path, &mut wal)?;
            wal.failed = false;
        }
        let log_path = || self.path.with_extension("wal");
        let seq = wal.append(&wal::encode(batches)).map_err(|e| {
            wal.failed = true;
            engine_err(&log_path(), e)
        })?;
        write_txn(&self.db, &self.path, false, |txn| {
            apply(txn, &mut batches.iter().flat_map(|b| b.iter()))?;
            txn.open_table(APPLIED)?.insert(APPLIED_KEY, seq)?;
            Ok(())
        })
        .inspect_err(|_| wal.failed = true)?;
        if wal.bytes() >= self.checkpoint_bytes
            && let Err(e) = checkpoint(&self.db, &self.path, &mut wal)
        {
            // The commit is durable in the log; the next one tries again.
            tracing::warn!(path = %self.path.display(), error = %e, "index checkpoint failed");
        }
        Ok(())
    }
}
