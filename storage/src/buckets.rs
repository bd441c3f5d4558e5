//! Buckets: their records and configuration documents live in the metadata index
//! (`Buckets`: name -> record; `BucketConfigs`: name, kind -> document), committed under
//! write quorum and read from a current drive like every other piece of metadata, sealed
//! against corruption. Each drive also has the bucket's directory, `buckets/<name>/data/`,
//! for its shard files; the index, not the directory, says whether a bucket exists.
//!
//! The store keeps every bucket's record in memory (a set holds few buckets, and each is
//! a few hundred bytes), loaded from the index at open and changed only after the index
//! took the change.
//!
//! Sets written before buckets moved into the index kept a `bucket.json` record and one
//! file per configuration document (`policy.json`, `acl.json`, `ownership.json`) in each
//! bucket directory on every drive, and each multipart upload as `uploads/<id>/`;
//! [`migrate_files`] imports them at the first start (one commit with a marker) and then
//! removes the files.

use crate::error::{Error, IoContext, Result};
use crate::fsio::{self, blocking};
use crate::index::{Batch, Table, keys};
use crate::meta::Versioning;
use crate::multipart::{PartRecord, UploadInfo};
use crate::names::BucketName;
use crate::store::{Bucket, Drive, Inner, Store, read_dir_paths};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// What LIST BUCKETS shows of a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: String,
    pub created: SystemTime,
    /// The account that owns the bucket; `None` for a bucket made before accounts
    /// existed (it belongs to the default account).
    pub owner: Option<String>,
}

/// A bucket's configuration documents: text the server keeps for the bucket and
/// interprets itself (the store only keeps it durably).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BucketConfig {
    /// The bucket policy (IAM policy JSON).
    Policy,
    /// The bucket's access control list.
    Acl,
    /// The bucket's Object Ownership setting.
    Ownership,
}

impl BucketConfig {
    pub const ALL: [BucketConfig; 3] = [BucketConfig::Policy, BucketConfig::Acl, BucketConfig::Ownership];

    /// The document's name in its `BucketConfigs` key.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BucketConfig::Policy => "policy",
            BucketConfig::Acl => "acl",
            BucketConfig::Ownership => "ownership",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The file that held the document before the index (see [`migrate_files`]).
    pub(crate) fn legacy_file(self) -> &'static str {
        match self {
            BucketConfig::Policy => "policy.json",
            BucketConfig::Acl => "acl.json",
            BucketConfig::Ownership => "ownership.json",
        }
    }
}

/// A `Buckets` row.
#[derive(Serialize, Deserialize)]
struct BucketRecord {
    created: SystemTime,
    #[serde(default)]
    versioning: Versioning,
    /// The owning account (absent: the default account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
}

impl BucketRecord {
    fn of(b: &Bucket, versioning: Versioning) -> Vec<u8> {
        serde_json::to_vec(&BucketRecord {
            created: b.created,
            versioning,
            owner: b.owner.clone(),
        })
        .expect("serialises")
    }
}

/// Marks, in the `Configs` table, that the file layout's bucket records, configuration
/// documents and uploads were imported: files found afterwards (a drive that was offline
/// during the upgrade) are removed unread, never imported over newer state.
const MIGRATED: &[u8] = b"\0migrated/buckets";

fn corrupt(what: &str, name: &str) -> Error {
    Error::Corrupt {
        path: format!("buckets/{name}").into(),
        reason: format!("unreadable {what}"),
    }
}

/// Every bucket the index holds, with its configuration documents.
pub(crate) fn load(inner: &Inner) -> Result<BTreeMap<String, Arc<Bucket>>> {
    inner.index.read(|ix| {
        let mut rows = Vec::new();
        ix.scan(Table::Buckets, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded, |k, v| {
            rows.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })?;
        let mut out = BTreeMap::new();
        for (k, v) in rows {
            let name = String::from_utf8(k).map_err(|_| corrupt("bucket name", "?"))?;
            let rec: BucketRecord = serde_json::from_slice(&v).map_err(|_| corrupt("bucket record", &name))?;
            let bucket = Bucket::new(name.clone(), &inner.drives, rec.created, rec.versioning, rec.owner);
            let prefix = keys::bucket_prefix(&name);
            let mut configs = BTreeMap::new();
            for (k, v) in ix.scan_prefix(Table::BucketConfigs, &prefix, usize::MAX)? {
                let kind = std::str::from_utf8(&k[prefix.len()..]).ok().and_then(BucketConfig::from_name);
                let (Some(kind), Ok(doc)) = (kind, String::from_utf8(v)) else {
                    return Err(corrupt("bucket configuration", &name));
                };
                configs.insert(kind, Arc::from(doc));
            }
            *bucket.configs.write().expect("config lock") = configs;
            out.insert(name, Arc::new(bucket));
        }
        Ok(out)
    })
}

/// Make sure drive `drive` has the directory tree of bucket `name` for shard files;
/// whether it had to be made. A new tree is built aside and renamed into place, so a
/// crash never leaves half a fan-out.
pub(crate) fn ensure_dir(drive: &Drive, name: &str, durable: bool) -> Result<bool> {
    let dir = drive.root.join("buckets").join(name);
    if dir.join("data").is_dir() {
        return Ok(false);
    }
    if dir.exists() {
        // A bucket directory of the file layout without shard files yet.
        fsio::create_fanout(&dir.join("data"))?;
        if durable {
            fsio::sync_dir(&dir)?;
        }
        return Ok(true);
    }
    let staging = drive.tmp.join(crate::names::random_hex());
    fs::create_dir(&staging).ctx("mkdir", &staging)?;
    fsio::create_fanout(&staging.join("data"))?;
    if let Err(e) = fs::rename(&staging, &dir) {
        let _ = fs::remove_dir_all(&staging);
        if dir.join("data").is_dir() {
            return Ok(false);
        }
        return Err(e).ctx("create bucket directory", &dir);
    }
    if durable {
        fsio::sync_dir(&drive.root.join("buckets"))?;
    }
    Ok(true)
}

/// Remove a bucket directory from a drive: renamed into the temp directory first, so it
/// is gone at once and whatever removal leaves is cleared at the next open.
pub(crate) fn remove_dir(drive: &Drive, dir: &Path, durable: bool) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let trash = drive.tmp.join(crate::names::random_hex());
    fs::rename(dir, &trash).ctx("remove bucket", dir)?;
    if durable {
        fsio::sync_dir(&drive.root.join("buckets"))?;
    }
    fs::remove_dir_all(&trash).ctx("remove", &trash)
}

impl Store {
    /// Create a bucket; `BucketAlreadyExists` if it is there.
    pub async fn create_bucket(&self, name: &BucketName) -> Result<BucketInfo> {
        self.create_bucket_for(name, None).await
    }

    /// Create a bucket owned by account `owner` (`None`: the default account): its
    /// directories on a write quorum of drives, then its record in the index.
    pub async fn create_bucket_for(&self, name: &BucketName, owner: Option<&str>) -> Result<BucketInfo> {
        let _guard = self.inner.bucket_lock.lock().await;
        if self.inner.buckets.read().expect("bucket lock").contains_key(name.as_str()) {
            return Err(Error::BucketAlreadyExists(name.to_string()));
        }
        let (me, n) = (self.inner.clone(), name.to_string());
        let made = self.inner.on_drives(move |d| ensure_dir(&me.drives[d], &n, me.opts.fsync)).await;
        self.inner.quorum("create bucket", &made, self.inner.write_quorum())?;
        let bucket = Bucket::new(
            name.to_string(),
            &self.inner.drives,
            SystemTime::now(),
            Versioning::Unversioned,
            owner.map(str::to_owned),
        );
        let mut batch = Batch::new();
        batch.put(
            Table::Buckets,
            name.as_str().as_bytes().to_vec(),
            &BucketRecord::of(&bucket, Versioning::Unversioned),
        );
        self.inner.commit(batch).await?;
        let info = BucketInfo {
            name: bucket.name.clone(),
            created: bucket.created,
            owner: bucket.owner.clone(),
        };
        self.inner
            .buckets
            .write()
            .expect("bucket lock")
            .insert(name.to_string(), Arc::new(bucket));
        Ok(info)
    }

    /// Whether a bucket exists, with its creation time.
    pub fn head_bucket(&self, name: &BucketName) -> Result<BucketInfo> {
        let b = self.bucket(name)?;
        Ok(info_of(&b))
    }

    /// Every bucket, by name.
    pub fn list_buckets(&self) -> Vec<BucketInfo> {
        self.inner
            .buckets
            .read()
            .expect("bucket lock")
            .values()
            .map(|b| info_of(b))
            .collect()
    }

    /// Delete an empty bucket (in-progress multipart uploads are aborted with it). One
    /// index commit removes the record, its documents and its uploads; acknowledged only
    /// when a write quorum took it, so a deleted bucket never comes back.
    pub async fn delete_bucket(&self, name: &BucketName) -> Result<()> {
        let _guard = self.inner.bucket_lock.lock().await;
        let bucket = self.bucket(name)?;
        // Writers of the bucket's keys and uploads hold its stripes; holding them all, no
        // write can land between the emptiness check and the removal.
        let held = bucket.lock_all().await;
        if !self.inner.bucket_is_empty(&bucket)? {
            return Err(Error::BucketNotEmpty(name.to_string()));
        }
        let mut batch = Batch::new();
        batch.delete(Table::Buckets, name.as_str().as_bytes().to_vec());
        let (from, to) = {
            let p = keys::bucket_prefix(name.as_str());
            let end = keys::prefix_end(&p);
            (p, end)
        };
        for t in [Table::BucketConfigs, Table::Uploads, Table::Parts, Table::Data] {
            batch.delete_range(t, from.clone(), to.clone());
        }
        self.inner.commit(batch).await?;
        bucket.deleted.store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.buckets.write().expect("bucket lock").remove(name.as_str());
        drop(held);
        // The directories hold only shard files of aborted uploads now; what a failure
        // leaves, healing removes.
        let (me, b2) = (self.inner.clone(), bucket.clone());
        let removed = self
            .inner
            .on_drives(move |d| remove_dir(&me.drives[d], &b2.dirs[d], me.opts.fsync))
            .await;
        for (d, r) in removed {
            if let Err(e) = r {
                tracing::warn!(drive = d, bucket = %name, error = %e, "could not remove a deleted bucket's directory; healing will");
            }
        }
        Ok(())
    }

    /// The bucket's versioning state.
    pub fn versioning(&self, bucket: &BucketName) -> Result<Versioning> {
        Ok(self.bucket(bucket)?.versioning())
    }

    /// Enable or suspend versioning (a bucket never returns to unversioned).
    pub async fn set_versioning(&self, bucket: &BucketName, state: Versioning) -> Result<()> {
        if state == Versioning::Unversioned {
            return Err(Error::InvalidArgument("versioning can only be Enabled or Suspended".into()));
        }
        let b = self.bucket(bucket)?;
        let _guard = b.stripe("\0versioning").lock().await;
        b.check_live()?;
        let mut batch = Batch::new();
        batch.put(Table::Buckets, b.name.as_bytes().to_vec(), &BucketRecord::of(&b, state));
        self.inner.commit(batch).await?;
        *b.versioning.write().expect("versioning lock") = state;
        Ok(())
    }

    /// One of the bucket's configuration documents, if it is set.
    pub fn bucket_config(&self, bucket: &BucketName, kind: BucketConfig) -> Result<Option<Arc<str>>> {
        Ok(self.bucket(bucket)?.configs.read().expect("config lock").get(&kind).cloned())
    }

    /// The bucket's policy document, if one is set.
    pub fn bucket_policy(&self, bucket: &BucketName) -> Result<Option<Arc<str>>> {
        self.bucket_config(bucket, BucketConfig::Policy)
    }

    /// Set (`Some`) or remove (`None`) one of the bucket's configuration documents,
    /// durably on a write quorum of drives. The store keeps the text; validating it is
    /// the caller's business.
    pub async fn set_bucket_config(&self, bucket: &BucketName, kind: BucketConfig, value: Option<String>) -> Result<()> {
        let b = self.bucket(bucket)?;
        let _guard = b.stripe(&format!("\0config/{}", kind.name())).lock().await;
        b.check_live()?;
        let key = keys::bucket_config(&b.name, kind.name());
        let mut batch = Batch::new();
        match &value {
            Some(v) => batch.put(Table::BucketConfigs, key, v.as_bytes()),
            None => batch.delete(Table::BucketConfigs, key),
        };
        self.inner.commit(batch).await?;
        let mut configs = b.configs.write().expect("config lock");
        match value {
            Some(v) => configs.insert(kind, Arc::from(v)),
            None => configs.remove(&kind),
        };
        Ok(())
    }
}

fn info_of(b: &Bucket) -> BucketInfo {
    BucketInfo {
        name: b.name.clone(),
        created: b.created,
        owner: b.owner.clone(),
    }
}

/// A `bucket.json` of the file layout.
#[derive(Deserialize)]
struct LegacyBucket {
    created: SystemTime,
    #[serde(default)]
    versioning: Versioning,
    /// When `versioning` was last set (the newest record won).
    #[serde(default)]
    versioning_changed: Option<SystemTime>,
    #[serde(default)]
    owner: Option<String>,
}

/// A configuration document file of the file layout (`value: None`: removed). The field
/// was named `policy` when the policy was the only document.
#[derive(Deserialize)]
struct LegacyConfig {
    #[serde(alias = "policy")]
    value: Option<String>,
    changed: SystemTime,
}

/// The file layout's files of one bucket directory: its record, documents and uploads.
fn legacy_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = ["bucket.json", "uploads"].iter().map(|f| dir.join(f)).collect();
    out.extend(BucketConfig::ALL.iter().map(|k| dir.join(k.legacy_file())));
    out
}

/// What the file layout held, merged across drives as start-up used to: a bucket exists
/// when a read quorum of drives has its record; the newest versioning state and the
/// newest record of each document win; uploads and parts are the union (the newest
/// record of a part wins).
fn read_legacy(inner: &Inner) -> Result<Batch> {
    struct Seen {
        count: usize,
        rec: LegacyBucket,
        configs: BTreeMap<BucketConfig, LegacyConfig>,
        uploads: BTreeMap<String, UploadInfo>,
        parts: BTreeMap<(String, u32), PartRecord>,
    }
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    for d in inner.live() {
        for dir in read_dir_paths(&inner.drives[d].root.join("buckets"))? {
            let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if BucketName::new(&name).is_err() {
                continue;
            }
            let path = dir.join("bucket.json");
            let Some(bytes) = fsio::read_opt(&path)? else { continue };
            let Ok(rec) = serde_json::from_slice::<LegacyBucket>(&bytes) else {
                tracing::error!(path = %path.display(), "unreadable bucket record; skipped");
                continue;
            };
            let s = seen.entry(name).or_insert_with(|| Seen {
                count: 0,
                rec: LegacyBucket {
                    created: rec.created,
                    versioning: rec.versioning,
                    versioning_changed: None,
                    owner: rec.owner.clone(),
                },
                configs: BTreeMap::new(),
                uploads: BTreeMap::new(),
                parts: BTreeMap::new(),
            });
            s.count += 1;
            if rec.versioning_changed > s.rec.versioning_changed {
                (s.rec.versioning, s.rec.versioning_changed) = (rec.versioning, rec.versioning_changed);
            }
            for kind in BucketConfig::ALL {
                let path = dir.join(kind.legacy_file());
                let Some(bytes) = fsio::read_opt(&path)? else { continue };
                let Ok(c) = serde_json::from_slice::<LegacyConfig>(&bytes) else {
                    tracing::error!(path = %path.display(), "unreadable bucket configuration record; skipped");
                    continue;
                };
                if s.configs.get(&kind).is_none_or(|n| c.changed > n.changed) {
                    s.configs.insert(kind, c);
                }
            }
            for up in read_dir_paths(&dir.join("uploads"))? {
                for file in read_dir_paths(&up)? {
                    let fname = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
                    let Some(bytes) = fsio::read_opt(&file)? else { continue };
                    if fname == "upload.json" {
                        match serde_json::from_slice::<UploadInfo>(&bytes) {
                            Ok(u) => {
                                s.uploads.insert(u.upload_id.clone(), u);
                            }
                            Err(_) => tracing::error!(path = %file.display(), "unreadable upload record; skipped"),
                        }
                    } else if fname.starts_with("part.") {
                        let id = up.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
                        match serde_json::from_slice::<PartRecord>(&bytes) {
                            Ok(p) => {
                                let k = (id, p.part.number);
                                if s.parts.get(&k).is_none_or(|h| p.last_modified > h.last_modified) {
                                    s.parts.insert(k, p);
                                }
                            }
                            Err(_) => tracing::error!(path = %file.display(), "unreadable part record; skipped"),
                        }
                    }
                }
            }
        }
    }
    let mut batch = Batch::new();
    for (name, s) in seen {
        if s.count < inner.read_quorum() {
            continue;
        }
        let rec = BucketRecord {
            created: s.rec.created,
            versioning: s.rec.versioning,
            owner: s.rec.owner,
        };
        batch.put(
            Table::Buckets,
            name.as_bytes().to_vec(),
            &serde_json::to_vec(&rec).expect("serialises"),
        );
        for (kind, c) in s.configs {
            if let Some(v) = c.value {
                batch.put(Table::BucketConfigs, keys::bucket_config(&name, kind.name()), v.as_bytes());
            }
        }
        for u in s.uploads.values() {
            crate::multipart::upload_rows(&mut batch, &name, u);
        }
        for ((id, _), p) in &s.parts {
            if s.uploads.contains_key(id) {
                crate::multipart::part_rows(&mut batch, &name, id, p);
            }
        }
    }
    Ok(batch)
}

/// Import the file layout's bucket records, documents and uploads into the index (once:
/// the marker records it), then remove their files. Killed half-way, it runs again at
/// the next start: the files go only after the index holds what they said.
pub(crate) async fn migrate_files(inner: &Arc<Inner>) -> Result<()> {
    let me = inner.clone();
    let dirs = blocking(move || {
        let mut dirs = Vec::new();
        for d in me.live() {
            for dir in read_dir_paths(&me.drives[d].root.join("buckets"))? {
                if legacy_files(&dir).iter().any(|f| f.exists()) {
                    dirs.push((d, dir));
                }
            }
        }
        Ok(dirs)
    })
    .await?;
    let done = inner.index.read(|ix| ix.get(Table::Configs, MIGRATED))?.is_some();
    if !done {
        let me = inner.clone();
        let mut batch = blocking(move || read_legacy(&me)).await?;
        let rows = batch.len();
        batch.put(Table::Configs, MIGRATED.to_vec(), b"1");
        inner.commit(batch).await?;
        if rows > 0 {
            tracing::info!(rows, "bucket records, documents and uploads moved into the metadata index");
        }
    }
    if dirs.is_empty() {
        return Ok(());
    }
    let me = inner.clone();
    blocking(move || {
        for (d, dir) in dirs {
            for f in legacy_files(&dir) {
                let r = if f.is_dir() {
                    remove_dir(&me.drives[d], &f, false)
                } else {
                    fs::remove_file(&f)
                        .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
                        .ctx("remove", &f)
                };
                if let Err(e) = r {
                    tracing::warn!(path = %f.display(), error = %e, "could not remove a file of the old bucket layout");
                }
            }
        }
        Ok(())
    })
    .await
}
