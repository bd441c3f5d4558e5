//! The store under simulated power loss: every drive's index lives on a simulated disk
//! (`index::sim`) that, at a crash, keeps only what was synced plus an arbitrary part of
//! what was not, each drive its own part. Concurrent writers put small (inline) and large
//! (erasure-coded) objects and delete them in a versioned bucket until the power fails;
//! the store reopened from what the disks kept must hold every acknowledged change, each
//! change in flight whole or not at all, read back byte for byte, with the same answer
//! from every drive. Shard files are on the real file system (their sync before the
//! metadata commit is the store's; this simulation does not drop their unsynced writes).

use crate::index::sim::{Machine, Power, crash_all, fail_after};
use crate::meta::Versioning;
use crate::names::{BucketName, ObjectKey, VersionId};
use crate::object::{ReadRange, VersionItem, WriteCondition};
use crate::store::{IndexOpener, Store, StoreOptions};
use crate::{ListQuery, ObjectAttrs};
use bytes::Bytes;
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const WRITERS: usize = 6;
/// Above the default inline threshold (128 KiB): shard files on every drive.
const LARGE: usize = 200 * 1024;

/// One change a writer made to its keys, as a listing shows it afterwards.
#[derive(Clone, Debug)]
struct Change {
    key: String,
    /// `None` while unknown (a change in flight whose answer never came).
    version: Option<String>,
    /// The body of a new version; `None` for a delete marker.
    body: Option<Vec<u8>>,
}

fn body_of(w: usize, n: usize) -> Vec<u8> {
    let len = if n % 11 == 10 { LARGE } else { 1 + (n * 37) % 3000 };
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((w * 7 + n) as u8))
        .collect()
}

/// Writer `w`'s n-th change: a new version of one of its keys, or a delete marker.
async fn change(store: &Store, bucket: &BucketName, w: usize, n: usize) -> (Change, crate::Result<Option<String>>) {
    let key = format!("w{w}/k{}", n % 4);
    let k = ObjectKey::new(&key).expect("key");
    if n % 6 == 5 {
        let r = store.delete_object(bucket, &k, None).await.map(|o| o.version_id);
        return (
            Change {
                key,
                version: None,
                body: None,
            },
            r,
        );
    }
    let data = body_of(w, n);
    let len = data.len() as u64;
    let chunks: Vec<Result<Bytes, std::io::Error>> = data.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let r = async {
        let staged = store.stage(bucket, futures::stream::iter(chunks), None, Some(len)).await?;
        let meta = store
            .commit_object(bucket, &k, staged, ObjectAttrs::default(), &WriteCondition::default())
            .await?;
        Ok(meta.version_id.clone())
    }
    .await;
    (
        Change {
            key,
            version: None,
            body: Some(data),
        },
        r,
    )
}

/// The versions of writer `w`'s keys, as a listing shows them: key order, newest first.
fn expected(done: &[Change], in_flight: Option<&Change>) -> Vec<Change> {
    let mut all: Vec<Change> = done.iter().chain(in_flight).cloned().collect();
    all.reverse();
    // Stable: each key's changes stay newest first.
    all.sort_by(|a, b| a.key.cmp(&b.key));
    all
}

async fn read_all(store: &Store, bucket: &BucketName, key: &str, version: &str) -> Vec<u8> {
    let v = VersionId::parse(version).expect("version id");
    let r = store
        .get_object(bucket, &ObjectKey::new(key).expect("key"), Some(&v), ReadRange::All)
        .await
        .unwrap_or_else(|e| panic!("{key} version {version} unreadable: {e}"));
    let mut out = Vec::new();
    let mut s = r.body;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("body chunk"));
    }
    out
}

/// What the store lists for writer `w`: (key, version id, delete marker, size).
fn listed(store: &Store, bucket: &BucketName, w: usize) -> Vec<(String, String, bool, u64)> {
    let prefix = format!("w{w}/");
    let page = store
        .list_versions(
            bucket,
            &ListQuery {
                prefix: &prefix,
                delimiter: None,
                start_after: None,
                max: 1000,
            },
            None,
        )
        .expect("list versions");
    assert!(!page.truncated);
    page.items
        .into_iter()
        .map(|i| match i {
            VersionItem::Version { key, meta, .. } => (key, meta.version_id.clone().expect("versioned"), meta.delete_marker, meta.size),
            VersionItem::CommonPrefix(p) => panic!("common prefix {p} without a delimiter"),
        })
        .collect()
}

fn open_with(drives: &[PathBuf], machines: &[Machine]) -> impl std::future::Future<Output = crate::Result<Store>> {
    let ms = machines.to_vec();
    let opener: IndexOpener = Arc::new(move |slot| ms[slot].index(64 << 10));
    Store::open_set_with(drives.to_vec(), StoreOptions::default(), Some(opener))
}

async fn power_loss_at_many_points(n_drives: usize, crash_points: impl Iterator<Item = u64>) {
    let bucket = BucketName::new("crash").expect("bucket name");
    let mut interrupted = 0;
    for crash_at in crash_points {
        let dir = tempfile::tempdir().expect("tempdir");
        let drives: Vec<PathBuf> = (0..n_drives).map(|d| dir.path().join(format!("d{d}"))).collect();
        let power = Arc::new(Mutex::new(Power::default()));
        let machines: Vec<Machine> = (0..n_drives).map(|_| Machine::on(&power)).collect();
        let store = open_with(&drives, &machines).await.expect("open");
        store.create_bucket(&bucket).await.expect("create bucket");
        store.set_versioning(&bucket, Versioning::Enabled).await.expect("versioning");
        fail_after(&power, crash_at);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, bucket) = (store.clone(), bucket.clone());
                tokio::spawn(async move {
                    let mut done = Vec::new();
                    for n in 0..400 {
                        let (mut c, r) = change(&store, &bucket, w, n).await;
                        match r {
                            Ok(v) => {
                                c.version = Some(v.expect("a versioned bucket names every version"));
                                done.push(c);
                            }
                            Err(_) => return (done, Some(c)),
                        }
                    }
                    (done, None)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for w in writers {
            outcomes.push(w.await.expect("writer"));
        }
        if outcomes.iter().any(|(_, f)| f.is_some()) {
            interrupted += 1;
        }
        drop(store);
        for trial in 0..2u64 {
            let store = open_with(&drives, &crash_all(&machines, crash_at * 977 + trial * 31))
                .await
                .unwrap_or_else(|e| panic!("crash at {crash_at}, trial {trial}: reopen failed: {e}"));
            for (w, (done, in_flight)) in outcomes.iter().enumerate() {
                let got = listed(&store, &bucket, w);
                // Every drive gives the same answer (reads rotate over the current ones).
                for _ in 1..n_drives {
                    assert_eq!(
                        listed(&store, &bucket, w),
                        got,
                        "crash at {crash_at}, trial {trial}: drives disagree"
                    );
                }
                let matches = |want: &[Change]| {
                    want.len() == got.len()
                        && want.iter().zip(&got).all(|(c, (key, v, marker, size))| {
                            *key == c.key
                                && c.version.as_ref().is_none_or(|x| x == v)
                                && *marker == c.body.is_none()
                                && c.body.as_ref().is_none_or(|b| b.len() as u64 == *size)
                        })
                };
                let without = expected(done, None);
                let with = expected(done, in_flight.as_ref());
                let want = if matches(&without) {
                    without
                } else if in_flight.is_some() && matches(&with) {
                    with
                } else {
                    panic!(
                        "crash at {crash_at}, trial {trial}, writer {w}: listed {got:?}, acknowledged {} changes, in flight {:?}",
                        done.len(),
                        in_flight.as_ref().map(|c| (&c.key, c.body.is_none()))
                    );
                };
                for (c, (key, v, _, _)) in want.iter().zip(&got) {
                    if let Some(b) = &c.body {
                        assert!(
                            read_all(&store, &bucket, key, v).await == *b,
                            "crash at {crash_at}: {key} {v} reads back other bytes"
                        );
                    }
                }
            }
            // The store takes writes again.
            let (_, r) = change(&store, &bucket, 99, 0).await;
            r.unwrap_or_else(|e| panic!("crash at {crash_at}, trial {trial}: a write after the restart failed: {e}"));
            drop(store);
        }
    }
    assert!(interrupted > 2, "the power failed mid-change only {interrupted} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_drive_store_keeps_every_acknowledged_change_through_power_loss() {
    power_loss_at_many_points(1, (40..1500).step_by(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_four_drive_store_keeps_every_acknowledged_change_through_power_loss() {
    power_loss_at_many_points(4, (100..4000).step_by(300)).await;
}
