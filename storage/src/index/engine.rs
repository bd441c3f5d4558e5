//! The small interface the metadata index needs from an embedded key-value engine, and its
//! redb implementation. Everything above this file (encoding, checksums, group commit)
//! is engine-neutral, so a second engine is one more `impl Engine`.

use std::fmt::Debug;
use std::ops::Bound;
use std::path::{Path, PathBuf};

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
    /// Upload id, part number -> a part's record.
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

/// redb (pure Rust, copy-on-write B+trees, one file).
pub struct Redb {
    db: redb::Database,
    path: PathBuf,
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
    /// Open or create the index file at `path` with a page cache of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: usize) -> EngineResult<Self> {
        let err = |e: redb::Error| EngineError {
            path: path.to_owned(),
            source: Box::new(e),
        };
        let db = redb::Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| err(e.into()))?;
        Self::init(db, path)
    }

    /// Open over a custom storage backend (the power-loss tests use one).
    pub fn with_backend(backend: impl redb::StorageBackend, name: &str, cache_bytes: usize) -> EngineResult<Self> {
        let path = PathBuf::from(name);
        let db = redb::Database::builder()
            .set_cache_size(cache_bytes)
            .create_with_backend(backend)
            .map_err(|e| EngineError {
                path: path.clone(),
                source: Box::new(redb::Error::from(e)),
            })?;
        Self::init(db, &path)
    }

    fn init(db: redb::Database, path: &Path) -> EngineResult<Self> {
        let me = Self { db, path: path.to_owned() };
        // Every table exists from the start, so reads never meet a missing one (checked
        // by a read first: an open commits nothing when they do).
        let all_there = {
            use redb::ReadableDatabase;
            let txn = me.db.begin_read().map_err(|e| me.err(e))?;
            Table::ALL.iter().all(|t| txn.open_table(def(*t)).is_ok())
        };
        if all_there {
            return Ok(me);
        }
        me.write(|txn| {
            for t in Table::ALL {
                txn.open_table(def(t))?;
            }
            Ok(())
        })?;
        Ok(me)
    }

    fn err(&self, e: impl Into<redb::Error>) -> EngineError {
        EngineError {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }

    fn write(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>) -> EngineResult<()> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        // A crash leaves an allocator snapshot to load instead of a full repair (seconds
        // per million keys) at the next open.
        txn.set_quick_repair(true);
        txn.set_durability(redb::Durability::Immediate).map_err(|e| self.err(e))?;
        match f(&txn) {
            Ok(()) => txn.commit().map_err(|e| self.err(e)),
            Err(e) => {
                let _ = txn.abort();
                Err(self.err(e))
            }
        }
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

    fn commit(&self, batches: &[&[Op]]) -> EngineResult<()> {
        self.write(|txn| {
            let mut open: Vec<(Table, OpenTable<'_>)> = Vec::new();
            for op in batches.iter().flat_map(|b| b.iter()) {
                let table = match op {
                    Op::Put(t, ..) | Op::Delete(t, _) | Op::DeleteRange(t, ..) => *t,
                };
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
        })
    }
}
