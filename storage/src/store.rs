//! The [`Store`]: an erasure set of drives, buckets on every drive, recovery at open, and
//! the per-bucket ordered index that serves HEAD and LIST without touching the disk.
//!
//! Every drive carries the same tree (see `storage/FORMAT.md`): a format record, a temp
//! directory, and per bucket the metadata of every key (identical on every drive) and one
//! shard file per object part. A write reaches a write quorum of drives or fails with
//! nothing visible; a read needs `data` good shards; what is missing is healed.

use crate::buckets::BucketConfig;
use crate::drives::{self, DriveFormat, FORMAT_VERSION, Slot};
use crate::erasure::{self, Erasure};
use crate::error::{Error, IoContext, Result};
use crate::fsio::{self, blocking};
use crate::io::{EngineKind, IoEngine};
use crate::meta::{ObjectMeta, Versioning};
use crate::names::BucketName;
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Tunables of the store; each is documented in `storage/FORMAT.md`.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// fsync data, metadata and directories before a write is acknowledged.
    pub fsync: bool,
    /// Objects up to this many bytes live inside their metadata.
    pub inline_threshold: usize,
    /// Largest object (or part) one PUT may carry.
    pub max_put_size: u64,
    /// Parity shards per block for a new set; `None`: [`erasure::default_parity`].
    pub parity: Option<usize>,
    /// Bytes per erasure-coded block.
    pub block_size: usize,
    /// The I/O engine wanted (std is used when io_uring is refused).
    pub io_engine: EngineKind,
    /// Page cache of the metadata indexes, in bytes, for the whole set (split evenly
    /// over its drives): what bounds the index's memory, whatever the number of keys.
    pub index_cache_bytes: usize,
}

/// Default of [`StoreOptions::index_cache_bytes`].
pub const DEFAULT_INDEX_CACHE: usize = 64 << 20;

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            fsync: true,
            inline_threshold: 128 * 1024,
            max_put_size: 5 * 1024 * 1024 * 1024,
            parity: None,
            block_size: 1024 * 1024,
            io_engine: EngineKind::Uring,
            index_cache_bytes: DEFAULT_INDEX_CACHE,
        }
    }
}

/// Every version of a key, newest first (never empty).
#[derive(Debug)]
pub struct KeyEntry {
    pub versions: Vec<Arc<ObjectMeta>>,
}

impl KeyEntry {
    /// The newest version (perhaps a delete marker).
    pub fn latest(&self) -> &Arc<ObjectMeta> {
        &self.versions[0]
    }

    /// The current object: the newest version unless it is a delete marker.
    pub fn current(&self) -> Option<&Arc<ObjectMeta>> {
        Some(self.latest()).filter(|m| !m.delete_marker)
    }

    /// The version with id `v` (`None`: null).
    pub fn find(&self, v: Option<&str>) -> Option<&Arc<ObjectMeta>> {
        self.versions.iter().find(|m| m.version_id.as_deref() == v)
    }

    /// The versions as plain values.
    pub(crate) fn plain(&self) -> Vec<ObjectMeta> {
        self.versions.iter().map(|m| (**m).clone()).collect()
    }
}

const STRIPES: usize = 64;

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// One slot of the erasure set.
pub(crate) struct Drive {
    pub(crate) root: PathBuf,
    pub(crate) tmp: PathBuf,
    /// Whether the drive was usable at open; offline drives are skipped until a restart.
    pub(crate) online: bool,
    /// Held for the process's life so two processes never share a drive.
    _lock: Option<File>,
}

pub(crate) struct Inner {
    /// Every online drive's metadata index, kept in agreement (`index::IndexSet`).
    /// Declared before `drives`, so it drops first: each index closes (checkpoints and
    /// releases its files) before the drive locks are released, and a new open that
    /// takes the locks never finds an index still open.
    pub(crate) index: crate::index::IndexSet,
    pub(crate) drives: Vec<Drive>,
    pub(crate) layout: Erasure,
    pub(crate) io: IoEngine,
    pub(crate) opts: StoreOptions,
    pub(crate) buckets: RwLock<BTreeMap<String, Arc<Bucket>>>,
    /// Serialises creating and deleting buckets (and healing's removal of directories of
    /// buckets that no longer exist).
    pub(crate) bucket_lock: tokio::sync::Mutex<()>,
    /// Objects a read found degraded, waiting for the healer.
    pub(crate) heal_queue: std::sync::Mutex<HashSet<(String, String)>>,
    pub(crate) heal_wake: tokio::sync::Notify,
    /// Set at open when a drive was (re)formatted or the drives disagreed.
    pub(crate) needs_full_heal: std::sync::atomic::AtomicBool,
    /// Serialises writers of configuration documents (`config.rs`).
    pub(crate) config_lock: tokio::sync::Mutex<()>,
}

impl Inner {
    /// Indexes of the drives that are online.
    pub(crate) fn live(&self) -> impl Iterator<Item = usize> + '_ {
        self.drives.iter().enumerate().filter(|(_, d)| d.online).map(|(i, _)| i)
    }

    /// Whether online drive `d` can be written now (its system directory still exists; a
    /// drive pulled while the server runs fails this).
    pub(crate) fn reachable(&self, d: usize) -> bool {
        self.drives[d].online && self.drives[d].tmp.is_dir()
    }

    /// Commit `batch` to the metadata index of every current drive (write quorum), after
    /// taking out drives that are no longer reachable.
    pub(crate) async fn commit(&self, batch: crate::index::Batch) -> Result<u64> {
        let current = self.index.current();
        let gone: Vec<usize> = current.iter().copied().filter(|d| !self.reachable(*d)).collect();
        if !gone.is_empty() {
            self.index.set_unreachable(&gone).await?;
        }
        self.index.commit(batch).await
    }

    /// Drives a write must reach.
    pub(crate) fn write_quorum(&self) -> usize {
        crate::shard_io::write_quorum(self.layout)
    }

    /// Drives that must agree for a read (the data shard count).
    pub(crate) fn read_quorum(&self) -> usize {
        self.layout.data()
    }

    /// The drive holding shard `i` of data `id`: shards rotate by a hash of the id, so
    /// data and parity spread evenly over the drives.
    pub(crate) fn drive_of_shard(&self, id: &str, i: usize) -> usize {
        let n = self.drives.len();
        let rot = id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        (i + rot as usize) % n
    }

    /// Run `f` for every online drive, in parallel when there are several; results in
    /// drive order.
    pub(crate) async fn on_drives<T, F>(&self, f: F) -> Vec<(usize, Result<T>)>
    where
        T: Send + 'static,
        F: Fn(usize) -> Result<T> + Send + Sync + 'static,
    {
        let live: Vec<usize> = self.live().collect();
        if let [only] = live[..] {
            return vec![(only, blocking(move || f(only)).await)];
        }
        let f = Arc::new(f);
        let tasks = live.iter().map(|&d| {
            let f = f.clone();
            async move { (d, blocking(move || f(d)).await) }
        });
        futures::future::join_all(tasks).await
    }

    /// Count the successes of a fan-out; `Quorum` when fewer than `need` succeeded.
    pub(crate) fn quorum<T>(&self, op: &'static str, results: &[(usize, Result<T>)], need: usize) -> Result<usize> {
        let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
        if ok >= need {
            return Ok(ok);
        }
        let first = results
            .iter()
            .find_map(|(d, r)| r.as_ref().err().map(|e| format!("drive {d}: {e}")));
        Err(Error::Quorum {
            op,
            ok,
            need,
            detail: first.unwrap_or_else(|| "too few drives online".into()),
        })
    }

    /// Queue an object for healing (a read found it degraded).
    pub(crate) fn queue_heal(&self, bucket: &str, key: &str) {
        let fresh = self
            .heal_queue
            .lock()
            .expect("heal queue lock")
            .insert((bucket.to_owned(), key.to_owned()));
        if fresh {
            self.heal_wake.notify_one();
        }
    }
}

/// One bucket: its directory on every drive, index and write locks.
pub(crate) struct Bucket {
    pub(crate) name: String,
    /// `DRIVE/buckets/<name>` for every slot, online or not.
    pub(crate) dirs: Vec<PathBuf>,
    pub(crate) created: SystemTime,
    pub(crate) versioning: RwLock<Versioning>,
    pub(crate) owner: Option<String>,
    /// Configuration documents as stored (the server validates and interprets them).
    pub(crate) configs: RwLock<BTreeMap<BucketConfig, Arc<str>>>,
    /// Writers of one key serialise on one of these.
    stripes: Box<[tokio::sync::Mutex<()>]>,
    /// Writers of one multipart upload (its parts, completion, abort) serialise on one of
    /// these; a completion then takes the key's stripe, never the other way round.
    upload_stripes: Box<[tokio::sync::Mutex<()>]>,
    /// Set (with every stripe held) when the bucket is deleted: a writer that got this
    /// handle before then finds it under its key's lock and writes nothing.
    pub(crate) deleted: std::sync::atomic::AtomicBool,
}

impl Bucket {
    /// Path of data `id`'s shard file, relative to the bucket directory.
    pub(crate) fn data_rel(id: &str) -> PathBuf {
        fsio::fanout_path(Path::new("data"), id)
    }
    pub(crate) fn data_path(&self, d: usize, id: &str) -> PathBuf {
        self.dirs[d].join(Self::data_rel(id))
    }
    pub(crate) fn stripe(&self, name: &str) -> &tokio::sync::Mutex<()> {
        &self.stripes[stripe_of(name)]
    }
    pub(crate) fn upload_stripe(&self, upload_id: &str) -> &tokio::sync::Mutex<()> {
        &self.upload_stripes[stripe_of(upload_id)]
    }
    /// Every stripe, upload stripes first (the order writers take them in).
    pub(crate) async fn lock_all(&self) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut held = Vec::with_capacity(2 * STRIPES);
        for s in self.upload_stripes.iter().chain(self.stripes.iter()) {
            held.push(s.lock().await);
        }
        held
    }
    /// `NoSuchBucket` once the bucket is deleted (checked by writers under a stripe).
    pub(crate) fn check_live(&self) -> Result<()> {
        if self.deleted.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::NoSuchBucket(self.name.clone()));
        }
        Ok(())
    }
    pub(crate) fn versioning(&self) -> Versioning {
        *self.versioning.read().expect("versioning lock")
    }
    /// Remove data `id`'s shard file from every drive (best effort: the sweep at open and
    /// healing catch what is left).
    pub(crate) fn remove_data(&self, id: &str) {
        for d in &self.dirs {
            let _ = fs::remove_file(d.join(Self::data_rel(id)));
        }
    }
}

/// FNV-1a: cheap and good enough to spread names over the stripes.
fn stripe_of(name: &str) -> usize {
    let h = name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (h % STRIPES as u64) as usize
}

/// What a drive slot held at open.
enum Found {
    /// The directory does not exist or cannot be read.
    Offline(String),
    Empty,
    Formatted(DriveFormat),
}

/// Opens slot N's index somewhere other than its drive's files (the power-loss tests'
/// simulated disks).
pub(crate) type IndexOpener = Arc<dyn Fn(usize) -> Result<crate::index::Index> + Send + Sync>;

/// Open each online drive's index (`.quarry/index.redb` and its logs `index.wal` and
/// `index.wal2`, `0600`: they hold the identity store's secrets) and find which are
/// current.
async fn open_indexes(
    drives: &[Drive],
    layout: Erasure,
    cache_bytes: usize,
    opener: Option<IndexOpener>,
) -> Result<crate::index::IndexSet> {
    use std::os::unix::fs::PermissionsExt;
    let online = drives.iter().filter(|d| d.online).count().max(1);
    let per_drive = (cache_bytes / online).max(1 << 20);
    let roots: Vec<Option<PathBuf>> = drives.iter().map(|d| d.online.then(|| d.root.clone())).collect();
    let indexes =
        blocking(move || {
            roots
            .into_iter()
            .enumerate()
            .map(|(slot, root)| {
                let Some(root) = root else { return Ok(None) };
                let path = root.join(".quarry").join("index.redb");
                if let Some(open) = &opener {
                    return open(slot).map(Some);
                }
                let ix = match crate::index::Index::open_redb(path.clone(), per_drive, crate::index::DEFAULT_COMMIT_QUEUE) {
                    Ok(ix) => ix,
                    Err(e) => {
                        // Never moved aside or rebuilt here (on a one-drive set it is all
                        // there is): the drive's index counts as offline until an operator
                        // looks, and the others serve.
                        tracing::error!(index = %path.display(), error = %e, "metadata index unreadable; the drive's metadata is offline");
                        return Ok(None);
                    }
                };
                for p in [path.clone(), path.with_extension("wal"), crate::index::engine::second_log_path(&path)] {
                    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).ctx("chmod", &p)?;
                }
                Ok(Some(ix))
            })
            .collect::<Result<Vec<_>>>()
        })
        .await?;
    crate::index::IndexSet::open(indexes, crate::shard_io::write_quorum(layout), crate::index::set::DEFAULT_LOG_KEEP).await
}

fn probe_drive(root: &Path) -> Result<Found> {
    match fs::read_dir(root) {
        Err(e) => return Ok(Found::Offline(e.to_string())),
        Ok(mut rd) => {
            if rd.next().is_none() {
                return Ok(Found::Empty);
            }
        }
    }
    let path = root.join(".quarry").join("format.json");
    match fsio::read_opt(&path) {
        Ok(None) => Err(Error::Drive(format!(
            "{} is not empty and holds no Quarry format record; refusing to use it as a drive",
            root.display()
        ))),
        Ok(Some(bytes)) => {
            if let Ok(f) = serde_json::from_slice::<DriveFormat>(&bytes)
                && f.version == FORMAT_VERSION
            {
                return Ok(Found::Formatted(f));
            }
            Err(Error::Drive(format!(
                "{} holds a format record this version cannot use (format {FORMAT_VERSION} is needed); \
                 move the directory away or start with an empty one",
                path.display()
            )))
        }
        Err(e) => Ok(Found::Offline(e.to_string())),
    }
}

/// How long opening a drive waits for another holder of its lock to let go.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

fn lock_drive(root: &Path) -> Result<File> {
    use std::os::fd::AsRawFd;
    let path = root.join(".quarry").join("lock");
    if !path.exists() {
        fs::write(&path, b"").ctx("create", &path)?;
    }
    // Read-only: flock needs no write access, and a drive with no file open for writing
    // can be remounted read-only by its operator while the server runs.
    let f = File::open(&path).ctx("open", &path)?;
    // A holder that is closing (a restarted server's predecessor still exiting, a store
    // whose last background task is finishing) gets a moment to let go.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(f);
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::Drive(format!(
                "{} is in use by another Quarry process (stop it first)",
                root.display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Format an empty drive for its slot: system directories, then the record (last, so a
/// crash mid-format leaves a drive that is still "empty enough" to format again).
fn format_drive(root: &Path, f: &DriveFormat) -> Result<()> {
    let sys = root.join(".quarry");
    fs::create_dir_all(sys.join("tmp")).ctx("mkdir", &sys)?;
    fs::create_dir_all(root.join("buckets")).ctx("mkdir", root)?;
    let bytes = serde_json::to_vec_pretty(f).expect("serialises");
    fsio::write_atomic(&sys.join("tmp"), &sys.join("format.json"), &bytes, true)?;
    fsio::sync_dir(root)
}

impl Store {
    /// Open (or initialise) a one-drive store at `root`.
    pub async fn open(root: impl Into<PathBuf>, opts: StoreOptions) -> Result<Self> {
        Self::open_set(vec![root.into()], opts).await
    }

    /// Open (or initialise) the erasure set on `drives` (1 to 16, in slot order): check
    /// every drive's format record, format empty drives (a fresh set, or a replaced drive,
    /// which healing then fills), take each drive's lock, clear temp files, build every
    /// bucket's index from the drives' metadata and delete shard files no committed
    /// metadata references (the leftovers of writes a crash interrupted).
    pub async fn open_set(drives: Vec<PathBuf>, opts: StoreOptions) -> Result<Self> {
        Self::open_set_with(drives, opts, None).await
    }

    /// [`Store::open_set`], with the drives' indexes opened by `opener` when given.
    pub(crate) async fn open_set_with(drives: Vec<PathBuf>, opts: StoreOptions, opener: Option<IndexOpener>) -> Result<Self> {
        if !(1..=16).contains(&drives.len()) {
            return Err(Error::Drive(format!("{} drives given; an erasure set has 1 to 16", drives.len())));
        }
        let n = drives.len();
        let parity = opts.parity.unwrap_or_else(|| erasure::default_parity(n));
        if parity >= n || (n > 1 && parity > n - parity) {
            return Err(Error::Drive(format!(
                "{parity} parity shards do not fit {n} drives (parity must not exceed data)"
            )));
        }
        let block_size = opts.block_size;
        let explicit_parity = opts.parity.is_some();
        let (drives, layout, reformatted) = blocking(move || {
            let mut found: Vec<Found> = drives.iter().map(|d| probe_drive(d)).collect::<Result<_>>()?;
            let fresh = !found.iter().any(|f| matches!(f, Found::Formatted(_)));
            if fresh {
                for (d, f) in drives.iter().zip(found.iter_mut()) {
                    if let Found::Offline(_) = f {
                        fs::create_dir_all(d).ctx("create drive directory", d)?;
                        *f = Found::Empty;
                    }
                }
            }
            let records: Vec<Option<DriveFormat>> = found
                .iter()
                .map(|f| match f {
                    Found::Formatted(r) => Some(r.clone()),
                    _ => None,
                })
                .collect();
            let slots =
                drives::check_set(&records, n - parity, parity, crate::names::random_hex).map_err(|e| Error::Drive(e.to_string()))?;
            let template = records.iter().flatten().next().cloned();
            let (data, par) = template.as_ref().map_or((n - parity, parity), |t| (t.data, t.parity));
            if explicit_parity && par != parity {
                return Err(Error::Drive(format!(
                    "the set was formatted as {data} data + {par} parity; --parity {parity} cannot change it"
                )));
            }
            let mut out = Vec::with_capacity(n);
            let mut reformatted = false;
            for ((root, f), slot) in drives.into_iter().zip(found).zip(slots) {
                let online = match (f, slot) {
                    (Found::Offline(why), _) => {
                        tracing::warn!(drive = %root.display(), reason = %why, "drive offline");
                        false
                    }
                    (Found::Empty, Slot::Format(rec)) => {
                        format_drive(&root, &rec)?;
                        if !fresh {
                            tracing::warn!(drive = %root.display(), slot = rec.index, "formatted a replaced drive; healing will fill it");
                            reformatted = true;
                        }
                        true
                    }
                    _ => true,
                };
                let root = if online {
                    fs::canonicalize(&root).ctx("resolve", &root)?
                } else {
                    root
                };
                let tmp = root.join(".quarry").join("tmp");
                let lock = if online {
                    let lock = lock_drive(&root)?;
                    if tmp.exists() {
                        fs::remove_dir_all(&tmp).ctx("clear", &tmp)?;
                    }
                    fs::create_dir_all(&tmp).ctx("mkdir", &tmp)?;
                    Some(lock)
                } else {
                    None
                };
                out.push(Drive {
                    root,
                    tmp,
                    online,
                    _lock: lock,
                });
            }
            let layout = Erasure::new(data, par, block_size).map_err(|e| Error::Drive(e.to_string()))?;
            let online = out.iter().filter(|d| d.online).count();
            if online < data {
                return Err(Error::Drive(format!(
                    "only {online} of {n} drives are online; the set needs {data} to serve"
                )));
            }
            Ok((out, layout, reformatted))
        })
        .await?;
        let io = IoEngine::new(opts.io_engine);
        let index = open_indexes(&drives, layout, opts.index_cache_bytes, opener).await?;
        let inner = Arc::new(Inner {
            index,
            drives,
            layout,
            io,
            opts,
            buckets: RwLock::new(BTreeMap::new()),
            bucket_lock: tokio::sync::Mutex::new(()),
            heal_queue: Default::default(),
            heal_wake: tokio::sync::Notify::new(),
            needs_full_heal: reformatted.into(),
            config_lock: tokio::sync::Mutex::new(()),
        });
        crate::config::migrate_config_files(&inner).await?;
        crate::buckets::migrate_files(&inner).await?;
        for d in inner.index.stale() {
            let me = inner.clone();
            tokio::spawn(async move {
                if let Err(e) = me.index.catch_up(d).await {
                    tracing::error!(drive = d, error = %e, "metadata index catch-up failed; a heal retries it");
                }
            });
        }
        let me = inner.clone();
        let buckets = blocking(move || crate::buckets::load(&me)).await?;
        let list: Vec<Arc<Bucket>> = buckets.values().cloned().collect();
        *inner.buckets.write().expect("bucket lock") = buckets;
        crate::migrate::run(&inner, &list).await?;
        tracing::info!(
            drives = inner.drives.len(),
            online = inner.live().count(),
            data = inner.layout.data(),
            parity = inner.layout.parity(),
            io_engine = inner.io.kind().as_str(),
            buckets = list.len(),
            "store opened"
        );
        // Shard files of writes a crash interrupted: swept in the background a little after
        // start-up (which never walks the data), holding the store only a directory at a
        // time so it never keeps a closed store open.
        let opened = SystemTime::now();
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            tokio::time::sleep(SWEEP_DELAY).await;
            if let Err(e) = sweep(weak, opened).await {
                tracing::warn!(error = %e, "sweep of unreferenced shard files failed");
            }
        });
        Ok(Self { inner })
    }

    /// The first online drive (the data directory of a one-drive store).
    pub fn root(&self) -> &Path {
        let d = self.inner.live().next().unwrap_or(0);
        &self.inner.drives[d].root
    }

    /// Every drive of the set, in slot order, and whether it is online.
    pub fn drives(&self) -> Vec<(PathBuf, bool)> {
        self.inner.drives.iter().map(|d| (d.root.clone(), d.online)).collect()
    }

    /// Data and parity shards per block.
    pub fn layout(&self) -> Erasure {
        self.inner.layout
    }

    /// The active I/O engine and its counters.
    pub fn io(&self) -> &IoEngine {
        &self.inner.io
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.opts
    }

    pub(crate) fn bucket(&self, name: &BucketName) -> Result<Arc<Bucket>> {
        self.inner
            .buckets
            .read()
            .expect("bucket lock")
            .get(name.as_str())
            .cloned()
            .ok_or_else(|| Error::NoSuchBucket(name.to_string()))
    }

    pub(crate) fn all_buckets(&self) -> Vec<Arc<Bucket>> {
        self.inner.buckets.read().expect("bucket lock").values().cloned().collect()
    }
}

impl Bucket {
    pub(crate) fn new(name: String, drives: &[Drive], created: SystemTime, versioning: Versioning, owner: Option<String>) -> Self {
        let stripes = (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect();
        let upload_stripes = (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect();
        Self {
            dirs: drives.iter().map(|d| d.root.join("buckets").join(&name)).collect(),
            name,
            created,
            versioning: RwLock::new(versioning),
            owner,
            configs: RwLock::new(BTreeMap::new()),
            stripes,
            upload_stripes,
            deleted: false.into(),
        }
    }
}

/// How long after start-up the sweep of unreferenced shard files begins.
const SWEEP_DELAY: std::time::Duration = std::time::Duration::from_secs(10);

impl Store {
    /// Delete shard files that no committed version and no multipart upload references
    /// and that are older than `before` (the leftovers of writes a crash interrupted; a
    /// write in flight made its files after `before`). Returns how many were removed.
    /// Runs by itself shortly after open.
    pub async fn sweep_orphans(&self, before: SystemTime) -> Result<usize> {
        sweep(Arc::downgrade(&self.inner), before).await
    }
}

async fn sweep(weak: std::sync::Weak<Inner>, before: SystemTime) -> Result<usize> {
    let buckets: Vec<Arc<Bucket>> = match weak.upgrade() {
        Some(inner) => inner.buckets.read().expect("bucket lock").values().cloned().collect(),
        None => return Ok(0),
    };
    let mut swept = 0usize;
    for b in buckets {
        let mut n = 0usize;
        for sub in 0..=255u8 {
            let Some(inner) = weak.upgrade() else { return Ok(swept + n) };
            if b.deleted.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let b2 = b.clone();
            n += blocking(move || {
                let mut n = 0usize;
                for d in inner.live() {
                    for path in read_dir_paths(&b2.dirs[d].join("data").join(format!("{sub:02x}")))? {
                        let id = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                        let old = fs::metadata(&path).and_then(|m| m.modified()).is_ok_and(|t| t < before);
                        if !old || inner.data_referenced(&b2, id)? {
                            continue;
                        }
                        match fs::remove_file(&path) {
                            Ok(()) => n += 1,
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e).ctx("remove orphan", &path),
                        }
                    }
                }
                Ok(n)
            })
            .await?;
        }
        if n > 0 {
            tracing::info!(bucket = %b.name, swept = n, "removed shard files of uncommitted writes");
        }
        swept += n;
    }
    Ok(swept)
}

pub(crate) fn read_dir_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map(|e| e.path()).ctx("list", dir)).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::Io {
            context: "list",
            path: dir.to_owned(),
            source: e,
        }),
    }
}
