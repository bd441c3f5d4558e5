//! The small interface the metadata index needs from an embedded key-value engine, and its
//! redb implementation. Everything above this file (encoding, checksums, group commit)
//! is engine-neutral, so a second engine is one more `impl Engine`.

use super::wal::{self, CHECKPOINT_BYTES, LogFile, Wal};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

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

    /// Its position in [`Table::ALL`]: how the log and the commit log name it.
    pub fn code(self) -> u8 {
        Table::ALL.iter().position(|x| *x == self).expect("every table is in ALL") as u8
    }

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
/// write-ahead log beside it (`wal.rs`) and applied to redb without a sync. Every
/// `checkpoint_bytes` of log, a checkpoint (a durable redb commit, quick repair on) runs
/// on a thread of its own while commits go on: they are logged to the other log file and
/// held in an [`Overlay`] that reads consult first, then applied to redb when it ends. So
/// a writer never waits for a checkpoint's flushes (they grow with the file), only for its
/// own record's.
pub struct Redb {
    db: Arc<redb::Database>,
    path: PathBuf,
    /// Held by the one committer; `Drop` checkpoints through it.
    logs: Mutex<Logs>,
    /// Commits logged while a checkpoint holds redb's write transaction.
    overlay: RwLock<Option<Overlay>>,
    /// Whether `overlay` is `Some`: reads take its lock only then. Set after the overlay
    /// is in place and before any commit goes into it; cleared after its changes are in
    /// redb, so a read that sees it clear finds everything acknowledged in redb.
    overlay_on: AtomicBool,
    checkpoint_bytes: u64,
}

struct Logs {
    wal: [Wal; 2],
    /// The file records go to.
    active: usize,
    /// The checkpoint running on its own thread: when it ends well, everything up to the
    /// sequence it started at is durable in redb and the other file is free.
    running: Option<std::thread::JoinHandle<EngineResult<()>>>,
    /// A record's write or apply, or a checkpoint, failed: a checkpoint on the committer
    /// before the next record (so a failed record is never replayed, and both files are
    /// free again).
    failed: bool,
}

impl Drop for Redb {
    /// A clean close leaves nothing to replay.
    fn drop(&mut self) {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let pending = logs.running.is_some() || logs.failed || logs.wal.iter().any(|w| w.bytes() > 0);
        if pending && let Err(e) = self.checkpoint_now(&mut logs) {
            tracing::warn!(path = %self.path.display(), error = %e, "index checkpoint at close failed; the log is replayed at the next open");
        }
    }
}

/// The engine's own bookkeeping, outside `Table::ALL` (so never copied to another drive):
/// the last log record applied.
const APPLIED: redb::TableDefinition<'static, &'static str, u64> = redb::TableDefinition::new("wal_applied");
const APPLIED_KEY: &str = "seq";
/// Log records applied per redb transaction when the log is replayed at open.
const REPLAY_RECORDS_PER_TXN: usize = 512;

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

/// Make everything applied so far durable in redb, recording `last` as applied: the last
/// sequence taken, applied or not, so a record whose commit failed is never replayed.
fn checkpoint_txn(db: &redb::Database, path: &Path, last: u64) -> EngineResult<()> {
    write_txn(db, path, true, |txn| {
        txn.open_table(APPLIED)?.insert(APPLIED_KEY, last)?;
        Ok(())
    })
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
                if from < to {
                    t.retain_in::<&[u8], _>(from.as_slice()..to.as_slice(), |_, _| false)?;
                }
            }
        }
    }
    Ok(())
}

/// What an overlay says of a key.
enum Seen<'a> {
    Value(&'a [u8]),
    Gone,
    /// Not touched while the checkpoint ran: redb has it.
    Unknown,
}

/// One table's changes in an overlay.
#[derive(Default)]
struct OverlayTable {
    /// Key -> its value, `None` when deleted.
    keys: BTreeMap<Vec<u8>, Option<Arc<[u8]>>>,
    /// Ranges deleted (keys put after a range delete are in `keys`).
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl OverlayTable {
    fn lookup(&self, key: &[u8]) -> Seen<'_> {
        match self.keys.get(key) {
            Some(Some(v)) => Seen::Value(v),
            Some(None) => Seen::Gone,
            None if self.hides(key) => Seen::Gone,
            None => Seen::Unknown,
        }
    }

    /// Whether a range delete covers `key`.
    fn hides(&self, key: &[u8]) -> bool {
        self.ranges.iter().any(|(from, to)| key >= from.as_slice() && key < to.as_slice())
    }
}

/// Commits made while a checkpoint runs: durable in the log, not yet in redb (whose one
/// write transaction the checkpoint holds). Bounded: at `checkpoint_bytes` of it, the
/// committer waits for the checkpoint.
#[derive(Default)]
struct Overlay {
    tables: [OverlayTable; Table::ALL.len()],
    /// The ops in order, for redb when the checkpoint ends, and the last record's sequence.
    ops: Vec<Op>,
    last_seq: u64,
    bytes: u64,
}

impl Overlay {
    fn add(&mut self, batches: &[&[Op]], seq: u64) {
        for op in batches.iter().flat_map(|b| b.iter()) {
            let t = &mut self.tables[op.table().code() as usize];
            match op {
                Op::Put(_, k, v) => {
                    t.keys.insert(k.clone(), Some(Arc::from(v.as_slice())));
                }
                Op::Delete(_, k) => {
                    t.keys.insert(k.clone(), None);
                }
                Op::DeleteRange(_, from, to) => {
                    if from < to {
                        let doomed: Vec<Vec<u8>> = t
                            .keys
                            .range::<[u8], _>((Bound::Included(from.as_slice()), Bound::Excluded(to.as_slice())))
                            .map(|(k, _)| k.clone())
                            .collect();
                        for k in doomed {
                            t.keys.remove(&k);
                        }
                        t.ranges.push((from.clone(), to.clone()));
                    }
                }
            }
            self.bytes += op.bytes() as u64;
            self.ops.push(op.clone());
        }
        self.last_seq = seq;
    }
}

/// Whether `(from, to)` is a range `BTreeMap::range` accepts (it panics on others; they
/// hold nothing).
fn valid_range(from: Bound<&[u8]>, to: Bound<&[u8]>) -> bool {
    match (from, to) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b)) | (Bound::Excluded(a), Bound::Included(b)) => a < b,
        _ => true,
    }
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

/// Open a log file for `path` (created `0600` from the start: it holds what the database
/// holds, the identity store's secrets among it). One whose database is gone describes
/// changes to a state that is gone: it is removed, not replayed into a new one.
fn open_log(path: &Path, db_existed: bool) -> EngineResult<std::fs::File> {
    if !db_existed && path.exists() {
        tracing::warn!(path = %path.display(), "removing a write-ahead log whose index file is gone");
        std::fs::remove_file(path).map_err(|e| engine_err(path, e))?;
    }
    let existed = path.exists();
    let file = std::os::unix::fs::OpenOptionsExt::mode(&mut std::fs::OpenOptions::new(), 0o600)
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| engine_err(path, e))?;
    if !existed && let Some(dir) = path.parent() {
        // The log's name is durable before any commit relies on it.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| engine_err(dir, e))?;
    }
    Ok(file)
}

/// The second log file of the index at `path` (the first has the extension `wal`).
pub fn second_log_path(path: &Path) -> PathBuf {
    path.with_extension("wal2")
}

impl Redb {
    /// Open or create the index file at `path` with a page cache of `cache_bytes`, and
    /// its two log files beside it (`path` with the extensions `wal` and `wal2`).
    pub fn open(path: &Path, cache_bytes: usize) -> EngineResult<Self> {
        let err = |e: redb::Error| engine_err(path, e);
        let db_existed = path.exists();
        let db = redb::Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| err(e.into()))?;
        let a = open_log(&path.with_extension("wal"), db_existed)?;
        let b = open_log(&second_log_path(path), db_existed)?;
        Self::init(db, [Box::new(a), Box::new(b)], path)
    }

    /// Open over custom storage for the database and its two logs (the power-loss tests
    /// use a simulated disk).
    pub fn with_backend(
        backend: impl redb::StorageBackend,
        logs: [Box<dyn LogFile>; 2],
        name: &str,
        cache_bytes: usize,
    ) -> EngineResult<Self> {
        let path = PathBuf::from(name);
        let db = redb::Database::builder()
            .set_cache_size(cache_bytes)
            .create_with_backend(backend)
            .map_err(|e| engine_err(&path, redb::Error::from(e)))?;
        Self::init(db, logs, &path)
    }

    fn init(db: redb::Database, logs: [Box<dyn LogFile>; 2], path: &Path) -> EngineResult<Self> {
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
        let [la, lb] = logs;
        let (wa, ra) = Wal::open(la, applied).map_err(|e| engine_err(&log_path, e))?;
        let (wb, rb) = Wal::open(lb, applied).map_err(|e| engine_err(&second_log_path(path), e))?;
        let records = wal::chain(applied, ra, rb).map_err(|e| engine_err(&log_path, e))?;
        // Both files start over (in memory; what they hold is applied before any record
        // is written).
        let next = records.last().map_or(applied, |r| r.seq) + 1;
        let engine = Self {
            db: Arc::new(db),
            path: path.to_owned(),
            logs: Mutex::new(Logs {
                wal: [wa, wb],
                active: 0,
                running: None,
                failed: false,
            }),
            overlay: RwLock::new(None),
            overlay_on: AtomicBool::new(false),
            checkpoint_bytes: CHECKPOINT_BYTES,
        };
        {
            let mut logs = engine.logs.lock().unwrap_or_else(|p| p.into_inner());
            for w in &mut logs.wal {
                w.restart_at(next);
            }
            if !records.is_empty() {
                let started = std::time::Instant::now();
                let n = records.len();
                let bytes: usize = records.iter().flat_map(|r| r.ops.iter()).map(Op::bytes).sum();
                // Many records per transaction: a transaction's own cost, not the records',
                // dominated replay at one each (1,000-1,600 records in 0.2-0.3 s).
                for chunk in records.chunks(REPLAY_RECORDS_PER_TXN) {
                    write_txn(&engine.db, path, false, |txn| {
                        apply(txn, &mut chunk.iter().flat_map(|r| r.ops.iter()))?;
                        let last = chunk.last().expect("chunks are not empty").seq;
                        txn.open_table(APPLIED)?.insert(APPLIED_KEY, last)?;
                        Ok(())
                    })?;
                }
                checkpoint_txn(&engine.db, path, next - 1)?;
                tracing::info!(path = %path.display(), records = n, bytes, ms = started.elapsed().as_millis() as u64, "index: replayed the write-ahead log");
            }
        }
        Ok(engine)
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

    /// Bytes in the overlay while a checkpoint runs (tests).
    #[cfg(test)]
    pub(super) fn overlay_bytes(&self) -> Option<u64> {
        self.overlay_lock().as_ref().map(|o| o.bytes)
    }

    fn overlay_lock(&self) -> std::sync::RwLockReadGuard<'_, Option<Overlay>> {
        self.overlay.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The overlay's lock, when a checkpoint has one (the common case costs one atomic load).
    fn overlay(&self) -> Option<std::sync::RwLockReadGuard<'_, Option<Overlay>>> {
        self.overlay_on.load(Ordering::Acquire).then(|| self.overlay_lock())
    }

    fn set_overlay(&self, o: Option<Overlay>) {
        let on = o.is_some();
        *self.overlay.write().unwrap_or_else(|p| p.into_inner()) = o;
        self.overlay_on.store(on, Ordering::Release);
    }

    /// Apply the overlay to redb and drop it (the checkpoint has ended).
    fn fold_overlay(&self) -> EngineResult<()> {
        {
            let ov = self.overlay_lock();
            let Some(o) = ov.as_ref() else { return Ok(()) };
            if !o.ops.is_empty() {
                write_txn(&self.db, &self.path, false, |txn| {
                    apply(txn, &mut o.ops.iter())?;
                    txn.open_table(APPLIED)?.insert(APPLIED_KEY, o.last_seq)?;
                    Ok(())
                })?;
            }
        }
        self.set_overlay(None);
        Ok(())
    }

    /// End the running checkpoint if it has finished (or, with `wait`, when it does),
    /// and fold the overlay into redb.
    fn finish_checkpoint(&self, logs: &mut Logs, wait: bool) -> EngineResult<()> {
        if let Some(h) = logs.running.take_if(|h| wait || h.is_finished()) {
            let done = h.join().unwrap_or_else(|_| {
                Err(EngineError {
                    path: self.path.clone(),
                    source: "the index checkpoint thread panicked".into(),
                })
            });
            if let Err(e) = done {
                // Both files may still hold records redb lacks durably: neither restarts
                // before a checkpoint of everything succeeds.
                tracing::warn!(path = %self.path.display(), error = %e, "index checkpoint failed");
                logs.failed = true;
            }
        }
        if logs.running.is_some() {
            return Ok(());
        }
        // Also an overlay a failed fold left: redb must have it before any checkpoint
        // lets the logs start over.
        self.fold_overlay().inspect_err(|_| logs.failed = true)
    }

    /// Checkpoint on the committer, after any running one: everything so far durable in
    /// redb, both files free.
    fn checkpoint_now(&self, logs: &mut Logs) -> EngineResult<()> {
        self.finish_checkpoint(logs, true)?;
        let next = logs.wal[logs.active].next_seq();
        checkpoint_txn(&self.db, &self.path, next - 1)?;
        for w in &mut logs.wal {
            w.restart_at(next);
        }
        logs.failed = false;
        Ok(())
    }

    /// Start a checkpoint of everything applied (up to `upto`) on its own thread; records
    /// go to the other file meanwhile, and changes to the overlay.
    fn start_checkpoint(&self, logs: &mut Logs, upto: u64) {
        let other = 1 - logs.active;
        // Free: the checkpoint before this one covered its records.
        logs.wal[other].restart_at(upto + 1);
        logs.active = other;
        self.set_overlay(Some(Overlay::default()));
        let (db, path) = (self.db.clone(), self.path.clone());
        let spawned = std::thread::Builder::new()
            .name("quarry-index-checkpoint".into())
            .spawn(move || checkpoint_txn(&db, &path, upto));
        match spawned {
            Ok(h) => logs.running = Some(h),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "no thread for the index checkpoint; checkpointing on the committer");
                self.set_overlay(None);
                if let Err(e) = checkpoint_txn(&self.db, &self.path, upto) {
                    tracing::warn!(path = %self.path.display(), error = %e, "index checkpoint failed");
                    logs.failed = true;
                }
            }
        }
    }
}

impl Engine for Redb {
    fn get(&self, table: Table, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        use redb::ReadableDatabase;
        // Held through the read: the overlay is dropped only after redb has its changes.
        let ov = self.overlay();
        if let Some(o) = ov.as_ref().and_then(|g| g.as_ref()) {
            match o.tables[table.code() as usize].lookup(key) {
                Seen::Value(v) => return Ok(Some(v.to_vec())),
                Seen::Gone => return Ok(None),
                Seen::Unknown => {}
            }
        }
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(def(table)).map_err(|e| self.err(e))?;
        let v = t.get(key).map_err(|e| self.err(e))?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    fn scan(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> EngineResult<()> {
        use redb::ReadableDatabase;
        if !valid_range(from, to) {
            return Ok(());
        }
        // A redb snapshot and the overlay's part of the range, taken together (then the
        // lock is let go: `visit` may read the index again).
        type Changed = (Vec<(Vec<u8>, Option<Arc<[u8]>>)>, Vec<(Vec<u8>, Vec<u8>)>);
        let (txn, changed): (_, Option<Changed>) = {
            let ov = self.overlay();
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let changed = ov.as_ref().and_then(|g| g.as_ref()).map(|o| {
                let t = &o.tables[table.code() as usize];
                let keys = t.keys.range::<[u8], _>((from, to)).map(|(k, v)| (k.clone(), v.clone())).collect();
                (keys, t.ranges.clone())
            });
            (txn, changed)
        };
        let t = txn.open_table(def(table)).map_err(|e| self.err(e))?;
        let mut range = t.range::<&[u8]>((from, to)).map_err(|e| self.err(e))?;
        let Some((keys, ranges)) = changed else {
            for item in range {
                let (k, v) = item.map_err(|e| self.err(e))?;
                if !visit(k.value(), v.value()) {
                    break;
                }
            }
            return Ok(());
        };
        // Merge: the overlay's value wins over redb's for the same key; redb keys under a
        // range the overlay deleted are gone.
        let hidden = |k: &[u8]| ranges.iter().any(|(f, t)| k >= f.as_slice() && k < t.as_slice());
        let mut changed = keys.into_iter().peekable();
        let mut db_next = range.next().transpose().map_err(|e| self.err(e))?;
        loop {
            let order = match (&db_next, changed.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((dk, _)), Some((ck, _))) => dk.value().cmp(ck.as_slice()),
            };
            if order == std::cmp::Ordering::Less {
                let (k, v) = db_next.take().expect("a redb entry");
                if !hidden(k.value()) && !visit(k.value(), v.value()) {
                    break;
                }
                db_next = range.next().transpose().map_err(|e| self.err(e))?;
                continue;
            }
            if order == std::cmp::Ordering::Equal {
                db_next = range.next().transpose().map_err(|e| self.err(e))?;
            }
            let (k, v) = changed.next().expect("an overlay entry");
            if let Some(v) = v
                && !visit(&k, &v)
            {
                break;
            }
        }
        Ok(())
    }

    fn last(&self, table: Table) -> EngineResult<Option<(Vec<u8>, Vec<u8>)>> {
        use redb::{ReadableDatabase, ReadableTable};
        let ov = self.overlay();
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(def(table)).map_err(|e| self.err(e))?;
        let Some(o) = ov.as_ref().and_then(|g| g.as_ref()).map(|o| &o.tables[table.code() as usize]) else {
            let last = t.last().map_err(|e| self.err(e))?;
            return Ok(last.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())));
        };
        let changed = o.keys.iter().rev().find_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.to_vec())));
        let mut stored = None;
        for item in t.iter().map_err(|e| self.err(e))?.rev() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if matches!(o.lookup(k.value()), Seen::Unknown) {
                stored = Some((k.value().to_vec(), v.value().to_vec()));
                break;
            }
        }
        Ok(match (changed, stored) {
            (Some(c), Some(s)) => Some(if c.0 >= s.0 { c } else { s }),
            (c, s) => c.or(s),
        })
    }

    /// Log the group and flush it (durable from here), then apply it to redb without a
    /// sync, or to the overlay while a checkpoint runs; start a checkpoint when the log
    /// has grown past its bound.
    fn commit(&self, batches: &[&[Op]]) -> EngineResult<()> {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let overlay_full = self.overlay_lock().as_ref().is_some_and(|o| o.bytes >= self.checkpoint_bytes);
        self.finish_checkpoint(&mut logs, overlay_full)?;
        if logs.failed {
            self.checkpoint_now(&mut logs)?;
        }
        let a = logs.active;
        let seq = logs.wal[a].append(&wal::encode(batches)).map_err(|e| {
            logs.failed = true;
            let path = if a == 0 {
                self.path.with_extension("wal")
            } else {
                second_log_path(&self.path)
            };
            engine_err(&path, e)
        })?;
        if logs.running.is_some() {
            let mut ov = self.overlay.write().unwrap_or_else(|p| p.into_inner());
            ov.as_mut().expect("an overlay while a checkpoint runs").add(batches, seq);
            return Ok(());
        }
        write_txn(&self.db, &self.path, false, |txn| {
            apply(txn, &mut batches.iter().flat_map(|b| b.iter()))?;
            txn.open_table(APPLIED)?.insert(APPLIED_KEY, seq)?;
            Ok(())
        })
        .inspect_err(|_| logs.failed = true)?;
        if logs.wal[a].bytes() >= self.checkpoint_bytes {
            self.start_checkpoint(&mut logs, seq);
        }
        Ok(())
    }
}
