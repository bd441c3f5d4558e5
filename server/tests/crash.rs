//! Crash safety: PUTs race a SIGKILL; after a restart every acknowledged write reads back
//! byte-exact and nothing half-written or never-sent is listed.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use common::{Server, bytes};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn content(key: &str, generation: u64) -> Vec<u8> {
    let seed = key.bytes().fold(generation, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    // Alternate inline-sized and file-backed bodies so both commit paths are exercised.
    let len = if seed % 2 == 0 {
        1_000 + (seed % 5_000) as usize
    } else {
        200_000 + (seed % 100_000) as usize
    };
    bytes(seed, len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_puts_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    sigkill_run(vec![tmp.path().join("d")], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_on_a_four_drive_set_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let drives: Vec<_> = (1..=4).map(|i| tmp.path().join(format!("d{i}"))).collect();
    sigkill_run(drives.clone(), &[]).await;
    // And with the std engine on the same drives.
    sigkill_run(drives, &["--io-engine", "std"]).await;
}

/// Writers overwrite, delete and multipart-upload keys until SIGKILL; after a restart
/// every acknowledged state reads back and nothing else is visible.
async fn sigkill_run(drives: Vec<std::path::PathBuf>, flags: &[&str]) {
    let mut server = Server::start_set(&drives, flags);
    let c = server.client();
    let _ = c.create_bucket().bucket("crash").send().await;
    // Start from an empty bucket (a second run reuses the drives).
    let old = c.list_objects_v2().bucket("crash").send().await.unwrap();
    for o in old.contents() {
        c.delete_object().bucket("crash").key(o.key().unwrap()).send().await.unwrap();
    }

    // Per key: the last acknowledged generation and the generation in flight.
    type Log = Arc<Mutex<HashMap<String, (Option<u64>, Option<u64>)>>>;
    let log: Log = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let c = c.clone();
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                // Each writer cycles over 8 keys, so keys are overwritten many times.
                let key = format!("w{w}/k{}", i % 8);
                let generation = i / 8;
                let pending = match i % 13 {
                    5 => u64::MAX,
                    7 => generation | MP,
                    _ => generation,
                };
                log.lock().unwrap().entry(key.clone()).or_default().1 = Some(pending);
                let ok = match i % 13 {
                    // A delete: acknowledged means absent (generation u64::MAX).
                    5 => c.delete_object().bucket("crash").key(&key).send().await.is_ok(),
                    // A two-part multipart upload.
                    7 => multipart(&c, &key, &content_mp(&key, generation)).await,
                    _ => c
                        .put_object()
                        .bucket("crash")
                        .key(&key)
                        .body(ByteStream::from(content(&key, generation)))
                        .send()
                        .await
                        .is_ok(),
                };
                if !ok {
                    return;
                }
                let acked = match i % 13 {
                    5 => u64::MAX,
                    7 => generation | MP,
                    _ => generation,
                };
                let mut l = log.lock().unwrap();
                let e = l.get_mut(&key).unwrap();
                *e = (Some(acked), None);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    for t in tasks {
        let _ = t.await;
    }
    let log = log.lock().unwrap().clone();
    assert!(
        log.values().filter(|(acked, _)| acked.is_some()).count() >= 8,
        "the writers made progress before the kill"
    );

    let mut server = Server::start_set(&drives, flags);
    let c = server.client();
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let r = c
            .list_objects_v2()
            .bucket("crash")
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        listed.extend(r.contents().iter().map(|o| o.key().unwrap().to_owned()));
        if !r.is_truncated().unwrap() {
            break;
        }
        token = r.next_continuation_token().map(str::to_owned);
    }
    for key in &listed {
        let (acked, in_flight) = log
            .get(key)
            .copied()
            .unwrap_or_else(|| panic!("{key} was never written but is listed"));
        let got = c
            .get_object()
            .bucket("crash")
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        let ok = [acked, in_flight]
            .into_iter()
            .flatten()
            .any(|g| got.as_ref() == expected(key, g).as_deref().unwrap_or(&[]) && g != u64::MAX);
        assert!(
            ok,
            "{key}: content is neither the acknowledged nor the in-flight version ({} bytes)",
            got.len()
        );
    }
    for (key, (acked, in_flight)) in &log {
        match acked {
            // Present, unless a delete of it was in flight.
            Some(g) if *g != u64::MAX => assert!(
                listed.contains(key) || *in_flight == Some(u64::MAX),
                "acknowledged {key} is missing after the crash"
            ),
            // An acknowledged delete stays deleted unless a write of the key was in flight.
            Some(_) => assert!(
                !listed.contains(key) || in_flight.is_some(),
                "{key} was deleted (acknowledged) but is listed again"
            ),
            None => {}
        }
    }
    server.terminate();
}

/// Flag bit marking a multipart generation.
const MP: u64 = 1 << 62;

fn content_mp(key: &str, generation: u64) -> Vec<u8> {
    let seed = key
        .bytes()
        .fold(generation ^ 0xABCD, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    bytes(seed, 5 * 1024 * 1024 + 1000)
}

fn expected(key: &str, g: u64) -> Option<Vec<u8>> {
    match g {
        u64::MAX => None,
        g if g & MP != 0 => Some(content_mp(key, g & !MP)),
        g => Some(content(key, g)),
    }
}

async fn multipart(c: &aws_sdk_s3::Client, key: &str, data: &[u8]) -> bool {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let Ok(up) = c.create_multipart_upload().bucket("crash").key(key).send().await else {
        return false;
    };
    let id = up.upload_id().unwrap_or_default().to_owned();
    let mut parts = Vec::new();
    for (n, chunk) in data.chunks(5 * 1024 * 1024).enumerate() {
        let n = n as i32 + 1;
        let Ok(r) = c
            .upload_part()
            .bucket("crash")
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
        else {
            return false;
        };
        parts.push(CompletedPart::builder().part_number(n).e_tag(r.e_tag().unwrap_or_default()).build());
    }
    c.complete_multipart_upload()
        .bucket("crash")
        .key(key)
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .is_ok()
}
