//! Fault injection through the real server on a 4-drive set: drives removed while serving,
//! bit flips and truncation in shard files, refused writes (503), a replaced drive healed
//! by the background healer and by `quarry heal`.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use common::{Server, bytes, status};
use std::path::{Path, PathBuf};

fn sizes() -> Vec<(String, Vec<u8>)> {
    [0usize, 1, 4096, 131_072, 131_073, 1_048_576, 2_500_000, 9_000_001]
        .iter()
        .map(|&n| (format!("k/{n}"), bytes(n as u64 + 7, n)))
        .collect()
}

async fn put_all(c: &aws_sdk_s3::Client, objs: &[(String, Vec<u8>)]) {
    for (k, d) in objs {
        c.put_object()
            .bucket("bkt")
            .key(k)
            .body(ByteStream::from(d.clone()))
            .send()
            .await
            .unwrap();
    }
}

async fn read_all(c: &aws_sdk_s3::Client, objs: &[(String, Vec<u8>)], what: &str) {
    for (k, d) in objs {
        let got = common::read_body(c, "bkt", k, None).await;
        assert!(got == *d, "{what}: {k} differs ({} vs {} bytes)", got.len(), d.len());
        if d.len() > 100_000 {
            let r = common::read_body(c, "bkt", k, Some("bytes=65000-99999")).await;
            assert!(r[..] == d[65_000..100_000], "{what}: range of {k}");
        }
    }
}

fn shard_files(drive: &Path) -> Vec<PathBuf> {
    let data = drive.join("buckets/bkt/data");
    let mut out = Vec::new();
    for sub in std::fs::read_dir(&data).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(sub.path()).into_iter().flatten().flatten() {
            out.push(f.path());
        }
    }
    out
}

fn heal_cmd(drives: &[PathBuf], extra: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quarry"))
        .arg("heal")
        .args(drives)
        .args(extra)
        .env("QUARRY_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_drives_survive_two_losses_corruption_and_heal() {
    let tmp = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = (1..=4).map(|i| tmp.path().join(format!("disk{i}"))).collect();
    let pattern = tmp.path().join("disk{1...4}").display().to_string();
    let objs = sizes();
    {
        let mut server = Server::start_set(&[PathBuf::from(&pattern)], &["--heal-interval", "0"]);
        let c = server.client();
        c.create_bucket().bucket("bkt").send().await.unwrap();
        put_all(&c, &objs).await;
        // Any two drives disappear while serving: every object reads back byte-exact.
        std::fs::remove_dir_all(&drives[1]).unwrap();
        std::fs::remove_dir_all(&drives[2]).unwrap();
        read_all(&c, &objs, "two drives removed").await;
        // Writes need 3 of 4 drives: now refused with a 503, and nothing becomes visible.
        let err = c
            .put_object()
            .bucket("bkt")
            .key("refused")
            .body(ByteStream::from(bytes(1, 300_000)))
            .send()
            .await
            .unwrap_err();
        assert_eq!(status(&err), 503, "{err:?}");
        assert_eq!(common::code(&err), "ServiceUnavailable");
        assert_eq!(status(&c.head_object().bucket("bkt").key("refused").send().await.unwrap_err()), 404);
        server.terminate();
    }
    // Replace the lost drives with empty directories: the server formats them and its
    // background healer rebuilds them (start-up heal).
    std::fs::create_dir(&drives[1]).unwrap();
    std::fs::create_dir(&drives[2]).unwrap();
    {
        let mut server = Server::start_set(&drives, &["--heal-interval", "0"]);
        let c = server.client();
        read_all(&c, &objs, "replaced drives, before heal").await;
        let want = shard_files(&drives[0]).len();
        let mut healed = false;
        for _ in 0..100 {
            if shard_files(&drives[1]).len() == want && shard_files(&drives[2]).len() == want {
                healed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(healed, "the background healer filled the replaced drives");
        server.terminate();
    }
    // Full redundancy is back: the other two drives can go.
    for d in [&drives[0], &drives[3]] {
        std::fs::rename(d, d.with_extension("away")).unwrap();
    }
    {
        let mut server = Server::start_set(&drives, &["--heal-interval", "0"]);
        read_all(&server.client(), &objs, "only healed drives").await;
        server.terminate();
    }
    for d in [&drives[0], &drives[3]] {
        std::fs::rename(d.with_extension("away"), d).unwrap();
    }
    // Bit flips on one drive and truncation on another, server stopped: `quarry heal
    // --deep` finds and rebuilds every damaged shard.
    let pristine: Vec<(PathBuf, Vec<u8>)> = shard_files(&drives[0])
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(&f).unwrap()))
        .collect();
    for f in shard_files(&drives[0]) {
        let mut b = std::fs::read(&f).unwrap();
        let at = b.len() / 2;
        b[at] ^= 1;
        std::fs::write(&f, b).unwrap();
    }
    for f in shard_files(&drives[3]) {
        let len = std::fs::metadata(&f).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(len / 2).unwrap();
    }
    let damaged = shard_files(&drives[0]).len() + shard_files(&drives[3]).len();
    let (ok, out) = heal_cmd(&drives, &["--deep"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{damaged} shards rebuilt")), "{out}");
    for (f, bytes) in &pristine {
        assert!(std::fs::read(f).unwrap() == *bytes, "{} rebuilt byte-identical", f.display());
    }
    let (ok, out) = heal_cmd(&drives, &["--deep"]);
    assert!(ok && out.contains(" 0 shards rebuilt"), "a second heal finds nothing: {out}");
    {
        let mut server = Server::start_set(&drives, &["--heal-interval", "0"]);
        // While the server holds the drives, `quarry heal` refuses to touch them.
        let (ok, out) = heal_cmd(&drives, &[]);
        assert!(!ok && out.contains("in use"), "{out}");
        // A read that meets a corrupt shard is served from the others and queues the
        // object for the background healer, which rewrites it (deep: every shard). Healthy
        // reads only touch data shards, so corrupt the largest object's shards on drives
        // 1 and 3: whatever the rotation, one of them is a data shard.
        let (f0, _) = pristine.iter().max_by_key(|(_, b)| b.len()).unwrap();
        let f2 = drives[2].join(f0.strip_prefix(&drives[0]).unwrap());
        let mut damaged = Vec::new();
        for f in [f0.clone(), f2] {
            let good = std::fs::read(&f).unwrap();
            let mut bad = good.clone();
            bad[10] ^= 0xFF;
            std::fs::write(&f, &bad).unwrap();
            damaged.push((f, good));
        }
        read_all(&server.client(), &objs, "corrupt shards").await;
        let mut fixed = false;
        for _ in 0..100 {
            if damaged.iter().all(|(f, good)| std::fs::read(f).unwrap() == *good) {
                fixed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(fixed, "the degraded read queued a heal that restored both shards");
        server.terminate();
    }
    for d in [&drives[1], &drives[2]] {
        std::fs::remove_dir_all(d).unwrap();
    }
    let mut server = Server::start_set(&drives, &["--heal-interval", "0"]);
    read_all(&server.client(), &objs, "after quarry heal, two other drives gone").await;
    server.terminate();
}
