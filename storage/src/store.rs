//! The [`Store`]: buckets on one local directory, recovery at open, and the per-bucket
//! ordered index that serves HEAD and LIST without touching the disk.

use crate::error::{Error, IoContext, Result};
use crate::fsio::{self, blocking};
use crate::meta::{MetaFile, ObjectMeta};
use crate::names::BucketName;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Tunables of the store; each is documented in `storage/FORMAT.md`.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// fsync data, metadata and directories before a write is acknowledged.
    pub fsync: bool,
    /// Objects up to this many bytes live inside their metadata file.
    pub inline_threshold: usize,
    /// Largest object (or part) one PUT may carry.
    pub max_put_size: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            fsync: true,
            inline_threshold: 128 * 1024,
            max_put_size: 5 * 1024 * 1024 * 1024,
        }
    }
}

/// What LIST BUCKETS shows of a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: String,
    pub created: SystemTime,
}

#[derive(Serialize, Deserialize)]
struct BucketRecord {
    created: SystemTime,
}

#[derive(Serialize, Deserialize)]
struct FormatRecord {
    format: u32,
}

const FORMAT_VERSION: u32 = 1;
const STRIPES: usize = 64;

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) root: PathBuf,
    pub(crate) tmp_dir: PathBuf,
    pub(crate) opts: StoreOptions,
    buckets: RwLock<BTreeMap<String, Arc<Bucket>>>,
}

/// One bucket's directories, index and write locks.
pub(crate) struct Bucket {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) created: SystemTime,
    /// Latest version of every key, ordered by key bytes.
    pub(crate) index: RwLock<BTreeMap<Vec<u8>, Arc<ObjectMeta>>>,
    /// Writers of one key (or one upload part) serialise on one of these.
    stripes: Box<[tokio::sync::Mutex<()>]>,
}

impl Bucket {
    pub(crate) fn meta_dir(&self) -> PathBuf {
        self.dir.join("meta")
    }
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub(crate) fn uploads_dir(&self) -> PathBuf {
        self.dir.join("uploads")
    }
    pub(crate) fn meta_path(&self, key: &str) -> PathBuf {
        use sha2::Digest as _;
        let name = crate::checksum::hex(&sha2::Sha256::digest(key.as_bytes()));
        fsio::fanout_path(&self.meta_dir(), &name)
    }
    pub(crate) fn data_path(&self, data_id: &str) -> PathBuf {
        fsio::fanout_path(&self.data_dir(), data_id)
    }
    pub(crate) fn stripe(&self, name: &str) -> &tokio::sync::Mutex<()> {
        // FNV-1a: cheap and good enough to spread keys over the stripes.
        let h = name
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        &self.stripes[(h % STRIPES as u64) as usize]
    }
    pub(crate) fn lookup(&self, key: &str) -> Option<Arc<ObjectMeta>> {
        self.index.read().expect("index lock").get(key.as_bytes()).cloned()
    }
}

impl Store {
    /// Open (or initialise) the store rooted at `root`: check the format, clear temp files,
    /// load every bucket's index and delete data files no committed metadata references
    /// (the leftovers of writes a crash interrupted before their commit).
    pub async fn open(root: impl Into<PathBuf>, opts: StoreOptions) -> Result<Self> {
        let root = root.into();
        let (root, buckets) = blocking(move || {
            fs::create_dir_all(&root).ctx("create data dir", &root)?;
            let root = fs::canonicalize(&root).ctx("resolve", &root)?;
            let sys = root.join(".quarry");
            fs::create_dir_all(&sys).ctx("mkdir", &sys)?;
            let format_path = sys.join("format.json");
            match fsio::read_opt(&format_path)? {
                Some(bytes) => {
                    let f: FormatRecord = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                        path: format_path.clone(),
                        reason: e.to_string(),
                    })?;
                    if f.format != FORMAT_VERSION {
                        return Err(Error::Corrupt {
                            path: format_path,
                            reason: format!("unsupported format {}", f.format),
                        });
                    }
                }
                None => {
                    let bytes = serde_json::to_vec(&FormatRecord { format: FORMAT_VERSION }).expect("serialises");
                    fs::write(&format_path, bytes).ctx("write", &format_path)?;
                }
            }
            let tmp = sys.join("tmp");
            if tmp.exists() {
                fs::remove_dir_all(&tmp).ctx("clear", &tmp)?;
            }
            fs::create_dir_all(&tmp).ctx("mkdir", &tmp)?;
            let buckets_dir = root.join("buckets");
            fs::create_dir_all(&buckets_dir).ctx("mkdir", &buckets_dir)?;
            let mut buckets = BTreeMap::new();
            for entry in fs::read_dir(&buckets_dir).ctx("list", &buckets_dir)? {
                let entry = entry.ctx("list", &buckets_dir)?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if BucketName::new(&name).is_err() {
                    continue;
                }
                let bucket = load_bucket(name.clone(), entry.path())?;
                buckets.insert(name, Arc::new(bucket));
            }
            Ok((root, buckets))
        })
        .await?;
        tracing::info!(root = %root.display(), buckets = buckets.len(), "store opened");
        let tmp_dir = root.join(".quarry").join("tmp");
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                tmp_dir,
                opts,
                buckets: RwLock::new(buckets),
            }),
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.inner.root
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

    /// Create a bucket; `BucketAlreadyExists` if it is there.
    pub async fn create_bucket(&self, name: &BucketName) -> Result<BucketInfo> {
        if self.inner.buckets.read().expect("bucket lock").contains_key(name.as_str()) {
            return Err(Error::BucketAlreadyExists(name.to_string()));
        }
        let inner = self.inner.clone();
        let n = name.to_string();
        let bucket = blocking(move || {
            let dir = inner.root.join("buckets").join(&n);
            let staging = inner.tmp_dir.join(crate::names::random_hex());
            let created = SystemTime::now();
            fs::create_dir(&staging).ctx("mkdir", &staging)?;
            fsio::create_fanout(&staging.join("meta"))?;
            fsio::create_fanout(&staging.join("data"))?;
            fs::create_dir(staging.join("uploads")).ctx("mkdir", &staging)?;
            let rec = serde_json::to_vec(&BucketRecord { created }).expect("serialises");
            fsio::write_atomic(&inner.tmp_dir, &staging.join("bucket.json"), &rec, inner.opts.fsync)?;
            // Renaming onto an existing directory fails, which settles a race of two creators.
            if let Err(e) = fs::rename(&staging, &dir) {
                let _ = fs::remove_dir_all(&staging);
                return if dir.exists() {
                    Err(Error::BucketAlreadyExists(n))
                } else {
                    Err(e).ctx("create bucket", &dir)
                };
            }
            if inner.opts.fsync {
                fsio::sync_dir(&inner.root.join("buckets"))?;
            }
            Ok(Bucket::new(n, dir, created))
        })
        .await?;
        let info = BucketInfo {
            name: bucket.name.clone(),
            created: bucket.created,
        };
        let mut map = self.inner.buckets.write().expect("bucket lock");
        if map.contains_key(name.as_str()) {
            return Err(Error::BucketAlreadyExists(name.to_string()));
        }
        map.insert(name.to_string(), Arc::new(bucket));
        Ok(info)
    }

    /// Whether a bucket exists, with its creation time.
    pub fn head_bucket(&self, name: &BucketName) -> Result<BucketInfo> {
        let b = self.bucket(name)?;
        Ok(BucketInfo {
            name: b.name.clone(),
            created: b.created,
        })
    }

    /// Every bucket, by name.
    pub fn list_buckets(&self) -> Vec<BucketInfo> {
        self.inner
            .buckets
            .read()
            .expect("bucket lock")
            .values()
            .map(|b| BucketInfo {
                name: b.name.clone(),
                created: b.created,
            })
            .collect()
    }

    /// Delete an empty bucket (in-progress multipart uploads are aborted with it).
    pub async fn delete_bucket(&self, name: &BucketName) -> Result<()> {
        let bucket = {
            let mut map = self.inner.buckets.write().expect("bucket lock");
            let b = map
                .get(name.as_str())
                .cloned()
                .ok_or_else(|| Error::NoSuchBucket(name.to_string()))?;
            if !b.index.read().expect("index lock").is_empty() {
                return Err(Error::BucketNotEmpty(name.to_string()));
            }
            map.remove(name.as_str());
            b
        };
        let inner = self.inner.clone();
        blocking(move || {
            let trash = inner.tmp_dir.join(crate::names::random_hex());
            fs::rename(&bucket.dir, &trash).ctx("remove bucket", &bucket.dir)?;
            if inner.opts.fsync {
                fsio::sync_dir(&inner.root.join("buckets"))?;
            }
            fs::remove_dir_all(&trash).ctx("remove", &trash)
        })
        .await
    }
}

impl Bucket {
    fn new(name: String, dir: PathBuf, created: SystemTime) -> Self {
        let stripes = (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect();
        Self {
            name,
            dir,
            created,
            index: RwLock::new(BTreeMap::new()),
            stripes,
        }
    }
}

/// Load one bucket at open: its record, every metadata file into the index, and a sweep of
/// unreferenced data files.
fn load_bucket(name: String, dir: PathBuf) -> Result<Bucket> {
    let rec_path = dir.join("bucket.json");
    let created = match fsio::read_opt(&rec_path)? {
        Some(b) => {
            serde_json::from_slice::<BucketRecord>(&b)
                .map_err(|e| Error::Corrupt {
                    path: rec_path.clone(),
                    reason: e.to_string(),
                })?
                .created
        }
        None => {
            return Err(Error::Corrupt {
                path: rec_path,
                reason: "bucket record missing".into(),
            });
        }
    };
    let bucket = Bucket::new(name, dir, created);
    let mut referenced: HashSet<String> = HashSet::new();
    let mut index = BTreeMap::new();
    for sub in read_dir_paths(&bucket.meta_dir())? {
        for path in read_dir_paths(&sub)? {
            let bytes = fs::read(&path).ctx("read", &path)?;
            let file = match MetaFile::decode(bytes.into(), &path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "skipping unreadable metadata");
                    continue;
                }
            };
            for v in &file.record.versions {
                referenced.extend(v.data_ids().map(str::to_owned));
            }
            if let Some(latest) = file.record.versions.into_iter().next() {
                index.insert(file.record.key.into_bytes(), Arc::new(latest));
            }
        }
    }
    referenced.extend(crate::multipart::referenced_data(&bucket)?);
    let mut swept = 0usize;
    for sub in read_dir_paths(&bucket.data_dir())? {
        for path in read_dir_paths(&sub)? {
            let id = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !referenced.contains(id) {
                fs::remove_file(&path).ctx("remove orphan", &path)?;
                swept += 1;
            }
        }
    }
    if swept > 0 {
        tracing::info!(bucket = %bucket.name, swept, "removed data files of uncommitted writes");
    }
    *bucket.index.write().expect("index lock") = index;
    Ok(bucket)
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
