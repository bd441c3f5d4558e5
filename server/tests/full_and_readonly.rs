//! Full and read-only drives through the real server: each drive of a 4-drive set is its
//! own small tmpfs. Filling them answers 503 without corrupting or hiding anything
//! acknowledged; deleting frees space again; read-only drives count against the write
//! quorum while reads go on.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use common::{Server, bytes, status};
use std::path::{Path, PathBuf};
use std::process::Command;

/// tmpfs mounts, unmounted on drop.
struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in &self.0 {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> bool {
    std::fs::create_dir_all(at).unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success())
}

/// Make a drive read-only under the running server: a read-only bind mount over it. (A
/// plain `remount,ro` is refused while a file is open for writing, as the metadata index
/// always is; a drive the kernel turns read-only on errors does not ask. New files and
/// renames through the path fail with EROFS, as they would.)
fn remount_ro(at: &Path, mounts: &mut Mounts) {
    let run = |args: &[&str]| Command::new("mount").args(args).arg(at).status().is_ok_and(|s| s.success());
    assert!(run(&["--bind", at.to_str().unwrap()]), "bind {}", at.display());
    mounts.0.push(at.to_owned());
    assert!(run(&["-o", "remount,ro,bind"]), "remount {} read-only", at.display());
}

async fn read(c: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    common::read_body(c, "full", key, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_and_read_only_drives_answer_503_and_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = (1..=4).map(|i| tmp.path().join(format!("disk{i}"))).collect();
    let mut mounts = Mounts(Vec::new());
    for d in &drives {
        if !mount_tmpfs(d, "24m") {
            // Mounting needs root (CI and the development machine run as root).
            eprintln!("SKIPPED: cannot mount tmpfs here (not root?)");
            return;
        }
        mounts.0.push(d.clone());
    }
    let mut server = Server::start_set(&drives, &["--heal-interval", "0"]);
    let c = server.client();
    c.create_bucket().bucket("full").send().await.unwrap();

    // Fill the drives: every PUT either succeeds or answers 503, never anything else.
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    let mut refused = None;
    for i in 0..200u64 {
        let key = format!("obj{i:03}");
        let data = bytes(i + 1, 1_000_000 + (i as usize % 7) * 1_000);
        match c
            .put_object()
            .bucket("full")
            .key(&key)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
        {
            Ok(_) => acked.push((key, data)),
            Err(e) => {
                assert_eq!(status(&e), 503, "a full drive set answers 503: {e:?}");
                refused = Some(key);
                break;
            }
        }
    }
    let refused = refused.expect("24 MiB drives fill up within 200 MiB of PUTs");
    assert!(acked.len() >= 10, "{} objects fit", acked.len());
    // Nothing acknowledged is lost or damaged; the refused object is not visible.
    for (k, d) in &acked {
        assert!(read(&c, k).await == *d, "{k} reads back after the drives filled");
    }
    assert_eq!(status(&c.head_object().bucket("full").key(&refused).send().await.unwrap_err()), 404);
    let listed = c.list_objects_v2().bucket("full").send().await.unwrap().key_count().unwrap();
    assert_eq!(listed as usize, acked.len());
    // Small objects (inline metadata) may still fit; deleting frees room for large ones.
    for (k, _) in acked.drain(..acked.len() / 2) {
        c.delete_object().bucket("full").key(&k).send().await.unwrap();
    }
    let again = bytes(999, 1_000_000);
    c.put_object()
        .bucket("full")
        .key("after-delete")
        .body(ByteStream::from(again.clone()))
        .send()
        .await
        .unwrap();
    acked.push(("after-delete".into(), again));

    // One read-only drive: 2+2 writes need 3 drives, so writes go on.
    remount_ro(&drives[0], &mut mounts);
    let small = bytes(7, 50_000);
    c.put_object()
        .bucket("full")
        .key("ro-one")
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap();
    acked.push(("ro-one".into(), small));
    // Two read-only drives: writes are refused with 503, reads still serve everything.
    remount_ro(&drives[1], &mut mounts);
    let err = c
        .put_object()
        .bucket("full")
        .key("ro-two")
        .body(ByteStream::from(bytes(8, 300_000)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 503, "{err:?}");
    assert_eq!(status(&c.head_object().bucket("full").key("ro-two").send().await.unwrap_err()), 404);
    for (k, d) in &acked {
        assert!(read(&c, k).await == *d, "{k} reads back with two read-only drives");
    }
    server.terminate();
}
