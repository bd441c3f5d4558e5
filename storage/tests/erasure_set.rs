//! Erasure sets under faults: lost drives, corrupt and truncated shards, write quorum,
//! replaced drives and healing, with both I/O engines.

use bytes::Bytes;
use futures::StreamExt;
use quarry_storage::{
    BucketName, CompletedPart, EngineKind, Error, ObjectAttrs, ObjectKey, PartNumber, ReadRange, Store, StoreOptions, WriteCondition,
};
use std::path::{Path, PathBuf};

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn body(data: &[u8]) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send + use<> {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data.chunks(70_001).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures::stream::iter(chunks)
}

fn drives(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n).map(|i| root.join(format!("d{i}"))).collect()
}

async fn open(d: &[PathBuf], engine: EngineKind) -> quarry_storage::Result<Store> {
    Store::open_set(
        d.to_vec(),
        StoreOptions {
            io_engine: engine,
            fsync: false,
            ..StoreOptions::default()
        },
    )
    .await
}

async fn put(store: &Store, b: &BucketName, k: &str, data: &[u8]) -> quarry_storage::Result<()> {
    let staged = store.stage(b, body(data), None, Some(data.len() as u64)).await?;
    store
        .commit_object(
            b,
            &ObjectKey::new(k).unwrap(),
            staged,
            ObjectAttrs::default(),
            &WriteCondition::default(),
        )
        .await?;
    Ok(())
}

async fn get(store: &Store, b: &BucketName, k: &str, range: ReadRange) -> quarry_storage::Result<Vec<u8>> {
    let r = store.get_object(b, &ObjectKey::new(k).unwrap(), None, range).await?;
    let mut out = Vec::new();
    let mut s = r.body;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.map_err(|e| Error::Io {
            context: "stream",
            path: PathBuf::new(),
            source: e,
        })?);
    }
    Ok(out)
}

/// The objects every test writes: empty, inline, one block, several blocks, multipart.
fn corpus() -> Vec<(String, Vec<u8>)> {
    [0usize, 100, 130_000, 200_000, 1_048_576, 3_000_001]
        .iter()
        .enumerate()
        .map(|(i, &n)| (format!("obj/{n}"), pattern(i as u64 + 1, n)))
        .collect()
}

async fn write_corpus(store: &Store, b: &BucketName) -> Vec<(String, Vec<u8>)> {
    let mut all = corpus();
    for (k, d) in &all {
        put(store, b, k, d).await.unwrap();
    }
    // A multipart object: 5 MiB + (5 MiB + 7) + 3 bytes.
    let key = ObjectKey::new("multi").unwrap();
    let up = store.create_upload(b, &key, ObjectAttrs::default(), None).await.unwrap();
    let parts = [pattern(40, 5 * 1024 * 1024), pattern(41, 5 * 1024 * 1024 + 7), pattern(42, 3)];
    let mut listed = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let staged = store.stage(b, body(p), None, None).await.unwrap();
        let rec = store
            .commit_part(b, &key, &up.upload_id, PartNumber::new(i as i64 + 1).unwrap(), staged)
            .await
            .unwrap();
        listed.push(CompletedPart {
            number: i as i64 + 1,
            etag: rec.part.etag,
            checksum: None,
        });
    }
    store
        .complete_upload(b, &key, &up.upload_id, &listed, &WriteCondition::default())
        .await
        .unwrap();
    all.push(("multi".into(), parts.concat()));
    all
}

async fn check_all(store: &Store, b: &BucketName, all: &[(String, Vec<u8>)], what: &str) {
    for (k, d) in all {
        assert_eq!(&get(store, b, k, ReadRange::All).await.unwrap(), d, "{what}: {k}");
        if d.len() > 10 {
            let (first, last) = (d.len() as u64 / 3, d.len() as u64 / 3 + 4095);
            let want = &d[first as usize..(last as usize + 1).min(d.len())];
            let got = get(store, b, k, ReadRange::From { first, last: Some(last) }).await.unwrap();
            assert_eq!(&got, want, "{what}: range of {k}");
        }
    }
}

fn shard_files(drive: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![drive.join("buckets")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.parent().and_then(|x| x.parent()).is_some_and(|x| x.ends_with("data")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_drives_lose_any_two_and_heal_back() {
    for engine in [EngineKind::Uring, EngineKind::Std] {
        let tmp = tempfile::tempdir().unwrap();
        let d = drives(tmp.path(), 4);
        let b = BucketName::new("set").unwrap();
        let all = {
            let store = open(&d, engine).await.unwrap();
            assert_eq!((store.layout().data(), store.layout().parity()), (2, 2));
            store.create_bucket(&b).await.unwrap();
            let all = write_corpus(&store, &b).await;
            check_all(&store, &b, &all, "healthy").await;
            // Two drives vanish under a running store: every object still reads back.
            std::fs::remove_dir_all(&d[0]).unwrap();
            std::fs::remove_dir_all(&d[3]).unwrap();
            check_all(&store, &b, &all, "two drives gone").await;
            all
        };
        // Restart with empty directories in their slots: they are formatted and healed.
        std::fs::create_dir(&d[0]).unwrap();
        std::fs::create_dir(&d[3]).unwrap();
        let store = open(&d, engine).await.unwrap();
        check_all(&store, &b, &all, "after restart").await;
        let report = store.heal_all(true).await.unwrap();
        assert!(report.unrecoverable.is_empty(), "{report}");
        assert_eq!(report.buckets_fixed, 2, "{report}");
        // (The new drives' indexes are caught up from the others at open, or by the heal
        // if that has not finished: the reads below with the two others gone prove it.)
        assert!(report.shards_rebuilt > 0, "{report}");
        assert!(!store.heal_all(true).await.unwrap().changed(), "a second heal finds nothing");
        drop(store);
        // Full redundancy is back: lose the two *other* drives and read everything.
        std::fs::remove_dir_all(&d[1]).unwrap();
        std::fs::remove_dir_all(&d[2]).unwrap();
        let store = open(&d, engine).await.unwrap();
        check_all(&store, &b, &all, "healed drives only").await;
        // Three lost drives are too many: a clear quorum error at open.
        drop(store);
        std::fs::remove_dir_all(&d[0]).unwrap();
        let err = open(&d, engine).await.err().expect("too few drives");
        assert!(matches!(err, Error::Drive(_)), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_truncated_shards_read_exact_and_heal() {
    let tmp = tempfile::tempdir().unwrap();
    let d = drives(tmp.path(), 4);
    let b = BucketName::new("rot").unwrap();
    let store = open(&d, EngineKind::Uring).await.unwrap();
    store.create_bucket(&b).await.unwrap();
    let all = write_corpus(&store, &b).await;
    // Flip a byte in every shard file of drive 1; truncate every shard file of drive 2.
    for f in shard_files(&d[1]) {
        let mut bytes = std::fs::read(&f).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x5A;
        std::fs::write(&f, bytes).unwrap();
    }
    for f in shard_files(&d[2]) {
        let len = std::fs::metadata(&f).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(len / 3).unwrap();
    }
    check_all(&store, &b, &all, "corrupt + truncated").await;
    let report = store.heal_all(true).await.unwrap();
    assert!(report.unrecoverable.is_empty(), "{report}");
    assert!(report.shards_rebuilt >= 2 * (all.len() - 2), "{report}");
    // Redundancy restored: the two drives that were healthy can now go.
    std::fs::remove_dir_all(&d[0]).unwrap();
    std::fs::remove_dir_all(&d[3]).unwrap();
    check_all(&store, &b, &all, "healed shards only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_delete_needs_a_write_quorum() {
    let tmp = tempfile::tempdir().unwrap();
    let d = drives(tmp.path(), 4);
    let (kept, gone) = (BucketName::new("kept").unwrap(), BucketName::new("gone").unwrap());
    let store = open(&d, EngineKind::Std).await.unwrap();
    store.create_bucket(&kept).await.unwrap();
    store.create_bucket(&gone).await.unwrap();
    // One drive lost: 3 of 4 remove it, a write quorum of a 2+2 set.
    std::fs::remove_dir_all(&d[0]).unwrap();
    store.delete_bucket(&gone).await.unwrap();
    assert!(matches!(store.head_bucket(&gone), Err(Error::NoSuchBucket(_))));
    // Two lost: only 2 could remove it, and 2 holding it would bring it back after a
    // restart. The delete fails and the bucket stays.
    std::fs::remove_dir_all(&d[1]).unwrap();
    let err = store.delete_bucket(&kept).await.unwrap_err();
    assert!(matches!(err, Error::Quorum { .. }), "{err}");
    store.head_bucket(&kept).unwrap();
    assert!(store.list_buckets().iter().any(|b| b.name == "kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_a_quorum_and_leave_nothing_when_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = drives(tmp.path(), 4);
    let b = BucketName::new("quorum").unwrap();
    let store = open(&d, EngineKind::Std).await.unwrap();
    store.create_bucket(&b).await.unwrap();
    // 2+2 writes need 3 drives: with one gone writes succeed, with two they fail.
    std::fs::remove_dir_all(&d[0]).unwrap();
    put(&store, &b, "ok", &pattern(1, 300_000)).await.unwrap();
    put(&store, &b, "ok-small", &pattern(2, 100)).await.unwrap();
    std::fs::remove_dir_all(&d[1]).unwrap();
    for (k, n) in [("refused", 300_000), ("refused-small", 100)] {
        let err = put(&store, &b, k, &pattern(3, n)).await.unwrap_err();
        assert!(matches!(err, Error::Quorum { .. }), "{k}: {err}");
        assert!(matches!(
            store.head_object(&b, &ObjectKey::new(k).unwrap(), None),
            Err(Error::NoSuchKey { .. })
        ));
    }
    assert_eq!(get(&store, &b, "ok", ReadRange::All).await.unwrap(), pattern(1, 300_000));
    for dir in &d[2..] {
        let leftovers = shard_files(dir).len();
        assert_eq!(leftovers, 1, "refused writes leave no shards on {}", dir.display());
    }
}

#[tokio::test]
async fn misplaced_and_foreign_drives_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = drives(tmp.path(), 4);
    drop(open(&d, EngineKind::Std).await.unwrap());
    let swapped = vec![d[1].clone(), d[0].clone(), d[2].clone(), d[3].clone()];
    let err = open(&swapped, EngineKind::Std).await.err().unwrap();
    assert!(err.to_string().contains("swapped"), "{err}");
    let other = drives(&tmp.path().join("other"), 4);
    for o in &other {
        std::fs::create_dir_all(o).unwrap();
    }
    drop(open(&other, EngineKind::Std).await.unwrap());
    let mixed = vec![d[0].clone(), d[1].clone(), d[2].clone(), other[3].clone()];
    let err = open(&mixed, EngineKind::Std).await.err().unwrap();
    assert!(err.to_string().contains("deployment"), "{err}");
    // A directory with unrelated files is never adopted as a drive.
    let junk = tmp.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), b"mine").unwrap();
    let err = open(&[junk], EngineKind::Std).await.err().unwrap();
    assert!(err.to_string().contains("refusing"), "{err}");
    // The same drives cannot be opened twice at once.
    let store = open(&d, EngineKind::Std).await.unwrap();
    let err = open(&d, EngineKind::Std).await.err().unwrap();
    assert!(err.to_string().contains("in use"), "{err}");
    drop(store);
}
