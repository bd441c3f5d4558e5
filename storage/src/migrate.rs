//! The in-place upgrade of a set written before the metadata index held objects: every
//! key's metadata file (`buckets/<b>/meta/xx/<sha256(key)>`, one per drive, see
//! `meta.rs`) is imported into the index, then the files are removed.
//!
//! - Keys are imported one fan-out directory (`meta/xx`) at a time across all drives, so
//!   memory holds one 256th of a bucket, and committed in batches of [`BATCH_KEYS`].
//! - Which copy of a key wins is what start-up used to decide: the newest copy a read
//!   quorum of drives holds; with none (a crash mid-commit), the newest copy, unless a
//!   write quorum of drives lacks the key (a committed delete).
//! - Each key's import first clears what the index holds for it, so importing twice gives
//!   the same index: a run killed half-way is simply run again at the next start.
//! - Only after every bucket is imported is the marker (`Configs`,
//!   `\0migrated/objects`) committed; then the files are removed. Files found once the
//!   marker is set (a drive that was offline during the upgrade) are removed unread.

use crate::error::{IoContext, Result};
use crate::fsio::blocking;
use crate::index::{Batch, Table, keys};
use crate::meta::{KeyRecord, MetaFile, ObjectMeta};
use crate::store::{Bucket, Inner, read_dir_paths};
use std::collections::HashMap;
use std::fs::{self, File};
use std::sync::Arc;

const MIGRATED: &[u8] = b"\0migrated/objects";
/// Keys per index commit during the upgrade.
pub(crate) const BATCH_KEYS: usize = 1_000;

#[cfg(test)]
pub(crate) static FAIL_AFTER_KEYS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);

/// Import every bucket's metadata files, if that has not been done; then remove them.
pub(crate) async fn run(inner: &Arc<Inner>, buckets: &[Arc<Bucket>]) -> Result<()> {
    let done = inner.index.read(|ix| ix.get(Table::Configs, MIGRATED))?.is_some();
    if !done {
        let mut total = 0usize;
        for b in buckets {
            if !has_meta_files(inner, b).await? {
                continue;
            }
            tracing::info!(bucket = %b.name, "upgrading the bucket's metadata files into the index");
            let n = import_bucket(inner, b, &mut total).await?;
            tracing::info!(bucket = %b.name, keys = n, "bucket's metadata is in the index");
        }
        let mut batch = Batch::new();
        batch.put(Table::Configs, MIGRATED.to_vec(), b"1");
        inner.commit(batch).await?;
        if total > 0 {
            tracing::info!(keys = total, "metadata upgrade finished; removing the old metadata files");
        }
    }
    for b in buckets {
        let (me, b2) = (inner.clone(), b.clone());
        blocking(move || {
            for d in me.live() {
                let dir = b2.dirs[d].join("meta");
                if dir.exists() {
                    let trash = me.drives[d].tmp.join(crate::names::random_hex());
                    fs::rename(&dir, &trash).ctx("remove", &dir)?;
                    fs::remove_dir_all(&trash).ctx("remove", &trash)?;
                }
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}

async fn has_meta_files(inner: &Arc<Inner>, b: &Arc<Bucket>) -> Result<bool> {
    let (me, b2) = (inner.clone(), b.clone());
    blocking(move || {
        for d in me.live() {
            for sub in read_dir_paths(&b2.dirs[d].join("meta"))? {
                if !read_dir_paths(&sub)?.is_empty() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    })
    .await
}

/// One key's copies across drives, grouped by identical content: (crc of the file, drives
/// holding it, the record, its inline blob).
type Variants = Vec<(u32, usize, KeyRecord, bytes::Bytes)>;

async fn import_bucket(inner: &Arc<Inner>, b: &Arc<Bucket>, total: &mut usize) -> Result<usize> {
    let mut imported = 0usize;
    for i in 0..=255u8 {
        let sub = format!("{i:02x}");
        let (me, b2) = (inner.clone(), b.clone());
        let chosen = blocking(move || read_subdir(&me, &b2, &sub)).await?;
        for chunk in chosen.chunks(BATCH_KEYS) {
            let mut batch = Batch::new();
            for (record, blob) in chunk {
                batch.extend(import_key(&b.name, record, blob)?);
            }
            #[cfg(test)]
            if *total + chunk.len() > FAIL_AFTER_KEYS.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(crate::error::Error::Drive("injected failure in the metadata upgrade".into()));
            }
            inner.commit(batch).await?;
            imported += chunk.len();
            *total += chunk.len();
        }
        if i % 32 == 31 {
            tracing::info!(bucket = %b.name, done_percent = (usize::from(i) + 1) * 100 / 256, keys = imported, "upgrading metadata");
        }
    }
    Ok(imported)
}

/// Read `meta/<sub>` on every live drive and choose each key's record.
fn read_subdir(inner: &Inner, b: &Bucket, sub: &str) -> Result<Vec<(KeyRecord, bytes::Bytes)>> {
    let mut keys: HashMap<String, Variants> = HashMap::new();
    for d in inner.live() {
        for path in read_dir_paths(&b.dirs[d].join("meta").join(sub))? {
            let mut buf = Vec::new();
            if File::open(&path)
                .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut buf))
                .is_err()
            {
                continue;
            }
            let crc = buf
                .len()
                .checked_sub(4)
                .map_or(0, |at| u32::from_le_bytes(buf[at..].try_into().expect("4 bytes")));
            let file = match MetaFile::decode(buf.into(), &path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "skipping unreadable metadata");
                    continue;
                }
            };
            let variants = keys.entry(file.record.key.clone()).or_default();
            match variants.iter_mut().find(|v| v.0 == crc) {
                Some(v) => v.1 += 1,
                None => variants.push((crc, 1, file.record, file.blob)),
            }
        }
    }
    let live = inner.live().count();
    let (rq, wq) = (inner.read_quorum(), inner.write_quorum());
    let mut out = Vec::with_capacity(keys.len());
    for (_, mut variants) in keys {
        let present: usize = variants.iter().map(|v| v.1).sum();
        let newest = |v: &(usize, &(u32, usize, KeyRecord, bytes::Bytes))| (v.1.2.versions.first().map(|m| m.last_modified), v.1.1);
        let quorate = variants.iter().enumerate().filter(|v| v.1.1 >= rq).max_by_key(newest);
        let chosen = match quorate {
            Some((i, _)) => Some(i),
            None if live - present >= wq => None,
            None => variants.iter().enumerate().max_by_key(newest).map(|(i, _)| i),
        };
        let Some(i) = chosen else { continue };
        let (_, _, record, blob) = variants.swap_remove(i);
        if !record.versions.is_empty() {
            out.push((record, blob));
        }
    }
    Ok(out)
}

/// The index rows of one key's record: its old rows cleared, every version with an order
/// stamp from its time (strictly decreasing, newest first), inline bytes, data references
/// and the current row.
fn import_key(bucket: &str, record: &KeyRecord, blob: &[u8]) -> Result<Batch> {
    let key = record.key.as_str();
    let obj = keys::object(bucket, key);
    let mut batch = Batch::new();
    batch.delete_range(Table::Versions, obj.clone(), keys::prefix_end(&obj));
    batch.delete_range(Table::Inline, obj.clone(), keys::prefix_end(&obj));
    let mut versions: Vec<ObjectMeta> = Vec::with_capacity(record.versions.len());
    let mut prev: Option<u64> = None;
    for v in &record.versions {
        let mut m = v.clone();
        let stamp = crate::versions::stamp(m.last_modified).max(1);
        m.order = prev.map_or(stamp, |p| stamp.min(p.saturating_sub(1)));
        prev = Some(m.order);
        let vk = keys::version(bucket, key, m.order);
        if let Some(at) = m.inline_at {
            let bytes = at
                .checked_add(m.size)
                .and_then(|end| blob.get(at as usize..end as usize))
                .ok_or_else(|| crate::error::Error::Corrupt {
                    path: key.into(),
                    reason: "inline data out of range".into(),
                })?;
            batch.put(Table::Inline, vk.clone(), bytes);
            m.inline_at = Some(0);
        }
        batch.put(Table::Versions, vk, &crate::versions::encode(&m));
        for id in m.data_ids() {
            batch.put(Table::Data, keys::data(bucket, id), &[]);
        }
        versions.push(m);
    }
    // The current row as a write would leave it.
    let (current, _) = crate::versions::change(bucket, key, None, versions, &[]);
    batch.extend(current);
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::ListQuery;
    use crate::meta::Versioning;
    use crate::names::{BucketName, ObjectKey, VersionId};
    use crate::object::{ReadRange, VersionItem, WriteCondition};
    use crate::{Store, StoreOptions};
    use futures::StreamExt;
    use std::path::{Path, PathBuf};

    /// (key, version, etag, size, delete marker, latest, bytes) of every version.
    type Everything = Vec<(String, String, String, u64, bool, bool, Vec<u8>)>;

    fn pattern(seed: usize, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed as u8)).collect()
    }

    async fn put(store: &Store, b: &BucketName, k: &str, data: Vec<u8>) {
        let len = data.len() as u64;
        let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(data))]);
        let staged = store.stage(b, body, None, Some(len)).await.unwrap();
        let key = ObjectKey::new(k).unwrap();
        store
            .commit_object(b, &key, staged, Default::default(), &WriteCondition::default())
            .await
            .unwrap();
    }

    async fn everything(store: &Store, b: &BucketName) -> Everything {
        let mut out = Vec::new();
        let (mut km, mut vm): (Option<String>, Option<String>) = (None, None);
        loop {
            let vid = vm.as_deref().map(|v| VersionId::parse(v).unwrap());
            let q = ListQuery {
                start_after: km.as_deref(),
                max: 700,
                ..Default::default()
            };
            let page = store.list_versions(b, &q, vid.as_ref()).unwrap();
            for item in &page.items {
                let VersionItem::Version { key, meta, latest } = item else {
                    continue;
                };
                let mut bytes = Vec::new();
                if !meta.delete_marker {
                    let v = VersionId::parse(meta.version_wire()).unwrap();
                    let r = store
                        .get_object(b, &ObjectKey::new(key).unwrap(), Some(&v), ReadRange::All)
                        .await
                        .unwrap();
                    let mut body = r.body;
                    while let Some(c) = body.next().await {
                        bytes.extend_from_slice(&c.unwrap());
                    }
                }
                out.push((
                    key.clone(),
                    meta.version_wire().to_owned(),
                    meta.etag.clone(),
                    meta.size,
                    meta.delete_marker,
                    *latest,
                    bytes,
                ));
            }
            match page.next_markers() {
                Some((k, v)) => (km, vm) = (Some(k), v),
                None => return out,
            }
        }
    }

    /// Rewrite a store as the format before the index: one metadata file per key on every
    /// drive, inline bytes in its blob; bucket records, documents and uploads as files in
    /// each bucket's directory; then remove the indexes.
    async fn write_old_format(store: Store, drives: &[PathBuf]) {
        let inner = store.inner.clone();
        for b in store.all_buckets() {
            let name = BucketName::new(&b.name).unwrap();
            let bucket_json = serde_json::json!({
                "created": b.created,
                "versioning": b.versioning(),
                "versioning_changed": std::time::SystemTime::now(),
            });
            let uploads = store
                .list_uploads(
                    &name,
                    &crate::multipart::UploadQuery {
                        max: 1000,
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .uploads;
            for d in drives {
                let dir = d.join("buckets").join(&b.name);
                fs::write(dir.join("bucket.json"), bucket_json.to_string()).unwrap();
                for (kind, doc) in b.configs.read().unwrap().iter() {
                    // Policy records written before the records were generic name their
                    // field "policy".
                    let field = if *kind == crate::BucketConfig::Policy { "policy" } else { "value" };
                    let rec = serde_json::json!({field: &**doc, "changed": std::time::SystemTime::now()});
                    fs::write(dir.join(kind.legacy_file()), rec.to_string()).unwrap();
                }
                for u in &uploads {
                    let up = dir.join("uploads").join(&u.upload_id);
                    fs::create_dir_all(&up).unwrap();
                    fs::write(up.join("upload.json"), serde_json::to_vec(u).unwrap()).unwrap();
                    let key = ObjectKey::new(&u.key).unwrap();
                    for p in store.list_parts(&name, &key, &u.upload_id).await.unwrap().1 {
                        fs::write(up.join(format!("part.{:05}", p.part.number)), serde_json::to_vec(&p).unwrap()).unwrap();
                    }
                }
            }
            let mut keys: Vec<String> = Vec::new();
            let bp = crate::index::keys::bucket_prefix(&b.name);
            crate::versions::scan_chunked(
                &inner,
                Table::Versions,
                std::ops::Bound::Included(bp.clone()),
                &crate::index::keys::prefix_end(&bp),
                |k, _| {
                    let (key, _) = crate::index::keys::parse_version(&b.name, k).unwrap();
                    if keys.last() != Some(&key) {
                        keys.push(key);
                    }
                    Ok(true)
                },
            )
            .unwrap();
            for key in keys {
                let entry = inner.entry(&b, &key).unwrap().unwrap();
                let mut blob = Vec::new();
                let mut versions = Vec::new();
                for v in entry.plain() {
                    let mut v2 = v.clone();
                    if v.inline_at.is_some() {
                        v2.inline_at = Some(blob.len() as u64);
                        blob.extend_from_slice(&inner.inline_bytes(&b, &key, &v).unwrap().unwrap());
                    }
                    v2.order = 0;
                    versions.push(v2);
                }
                let file = MetaFile::encode(
                    &KeyRecord {
                        key: key.clone(),
                        versions,
                    },
                    &blob,
                );
                use sha2::Digest as _;
                let name = crate::checksum::hex(&sha2::Sha256::digest(key.as_bytes()));
                for d in drives {
                    let path = d.join("buckets").join(&b.name).join("meta").join(&name[..2]).join(&name);
                    fs::create_dir_all(path.parent().unwrap()).unwrap();
                    fs::write(&path, &file).unwrap();
                }
            }
        }
        drop(inner);
        drop(store);
        for d in drives {
            fs::remove_file(d.join(".quarry/index.redb")).unwrap();
        }
    }

    async fn start_upload(store: &Store, b: &BucketName, k: &str, parts: &[Vec<u8>]) -> String {
        let key = ObjectKey::new(k).unwrap();
        let up = store.create_upload(b, &key, Default::default(), None).await.unwrap();
        for (i, data) in parts.iter().enumerate() {
            let len = data.len() as u64;
            let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(data.clone()))]);
            let staged = store.stage(b, body, None, Some(len)).await.unwrap();
            let n = crate::names::PartNumber::new(i as i64 + 1).unwrap();
            store.commit_part(b, &key, &up.upload_id, n, staged).await.unwrap();
        }
        up.upload_id
    }

    fn meta_files(drives: &[PathBuf]) -> usize {
        fn walk(p: &Path) -> usize {
            fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
                .unwrap_or(0)
        }
        drives
            .iter()
            .flat_map(|d| fs::read_dir(d.join("buckets")).unwrap().flatten())
            .map(|b| walk(&b.path().join("meta")))
            .sum()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_old_format_set_upgrades_in_place_even_when_stopped_half_way() {
        let tmp = tempfile::tempdir().unwrap();
        let drives: Vec<PathBuf> = (0..4).map(|i| tmp.path().join(format!("d{i}"))).collect();
        let opts = StoreOptions {
            inline_threshold: 4096,
            ..Default::default()
        };
        let (plain, vers) = (BucketName::new("plain").unwrap(), BucketName::new("vers").unwrap());
        let store = Store::open_set(drives.clone(), opts.clone()).await.unwrap();
        store.create_bucket(&plain).await.unwrap();
        store.create_bucket(&vers).await.unwrap();
        store.set_versioning(&vers, Versioning::Enabled).await.unwrap();
        for i in 0..2_500 {
            let len = if i % 500 == 7 { 300_000 } else { 10 + i % 300 };
            put(&store, &plain, &format!("dir{}/k{i:05}", i % 3), pattern(i, len)).await;
        }
        for round in 0..3 {
            for k in ["a", "a/b", "b\u{1}c", "z"] {
                put(&store, &vers, k, pattern(round * 7 + k.len(), 100 + round * 5000)).await;
            }
        }
        store.delete_object(&vers, &ObjectKey::new("a").unwrap(), None).await.unwrap();
        store.set_versioning(&vers, Versioning::Suspended).await.unwrap();
        put(&store, &vers, "z", pattern(99, 50)).await;
        let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
        store.set_bucket_policy(&plain, Some(policy.into())).await.unwrap();
        let parts = vec![pattern(5, 5 << 20), pattern(6, 1000)];
        let upload = start_upload(&store, &plain, "multi/part", &parts).await;
        let want = (everything(&store, &plain).await, everything(&store, &vers).await);
        assert_eq!(want.0.len(), 2_500);
        assert_eq!(want.1.len(), 14, "{:?}", want.1.iter().map(|v| (&v.0, &v.1)).collect::<Vec<_>>());
        write_old_format(store, &drives).await;
        assert_eq!(meta_files(&drives), 4 * (2_500 + 4));

        // Stopped after 1,500 keys: some batches committed, the files all still there.
        FAIL_AFTER_KEYS.store(1_500, std::sync::atomic::Ordering::SeqCst);
        let failed = Store::open_set(drives.clone(), opts.clone()).await;
        FAIL_AFTER_KEYS.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
        assert!(failed.is_err());
        assert_eq!(meta_files(&drives), 4 * (2_500 + 4));

        let store = Store::open_set(drives.clone(), opts.clone()).await.unwrap();
        assert_eq!(meta_files(&drives), 0, "the files are removed once the index has everything");
        assert_eq!((everything(&store, &plain).await, everything(&store, &vers).await), want);
        assert_eq!(store.versioning(&vers).unwrap(), Versioning::Suspended);
        assert_eq!(store.versioning(&plain).unwrap(), Versioning::Unversioned);
        assert_eq!(store.bucket_policy(&plain).unwrap().as_deref(), Some(policy));
        for d in &drives {
            for f in ["bucket.json", "policy.json", "uploads"] {
                assert!(!d.join("buckets/plain").join(f).exists(), "{f} is removed");
            }
        }
        // The upload came along, and its parts' data is referenced: a sweep keeps it.
        store
            .sweep_orphans(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        let key = ObjectKey::new("multi/part").unwrap();
        let (_, listed) = store.list_parts(&plain, &key, &upload).await.unwrap();
        let done: Vec<crate::multipart::CompletedPart> = listed
            .iter()
            .map(|p| crate::multipart::CompletedPart {
                number: i64::from(p.part.number),
                etag: p.part.etag.clone(),
                checksum: None,
            })
            .collect();
        store
            .complete_upload(&plain, &key, &upload, &done, &WriteCondition::default())
            .await
            .unwrap();
        {
            let r = store.get_object(&plain, &key, None, ReadRange::All).await.unwrap();
            let mut body = Vec::new();
            let mut s = r.body;
            while let Some(c) = s.next().await {
                body.extend_from_slice(&c.unwrap());
            }
            assert_eq!(body, parts.concat());
        }
        store.delete_object(&plain, &key, None).await.unwrap();
        // And it stays so: writes go on as before, a restart does not import again.
        put(&store, &plain, "new", pattern(1, 20)).await;
        drop(store);
        let store = Store::open_set(drives.clone(), opts).await.unwrap();
        assert_eq!(everything(&store, &plain).await.len(), 2_501);
        assert_eq!(everything(&store, &vers).await, want.1);
    }
}
