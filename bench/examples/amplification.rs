//! Read amplification of ranged GETs: bytes the I/O engine reads from the drives per byte
//! a client asked for, for the range sizes analytics engines use (Parquet footers and
//! column chunks) on a 1-drive and a 4-drive (2+2) set. Bytes, not time: the figure is
//! exact and repeatable.
//!
//! `cargo run --release -p quarry-bench --example amplification`

use futures::StreamExt;
use quarry_storage::{BucketName, ObjectAttrs, ObjectKey, ReadRange, Store, StoreOptions, WriteCondition};
use std::sync::atomic::Ordering;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size: usize = 64 << 20;
    let data: Vec<u8> = (0..size).map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8).collect();
    println!("| drives (k+m) | range | requests | bytes asked | bytes read | amplification |");
    println!("|---|---|---|---|---|---|");
    for drives in [1usize, 4] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs: Vec<_> = (0..drives).map(|i| tmp.path().join(format!("d{i}"))).collect();
        let store = Store::open_set(
            dirs,
            StoreOptions {
                fsync: false,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("open");
        let b = BucketName::new("amp").expect("name");
        store.create_bucket(&b).await.expect("bucket");
        let key = ObjectKey::new("obj").expect("key");
        let body = futures::stream::iter(
            data.chunks(1 << 20)
                .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        let staged = store.stage(&b, body, None, Some(size as u64)).await.expect("stage");
        store
            .commit_object(&b, &key, staged, ObjectAttrs::default(), &WriteCondition::default())
            .await
            .expect("commit");
        let layout = store.layout();
        for range in [8u64, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 8 << 20] {
            let stats = store.io().stats();
            let before = stats.bytes_read.load(Ordering::Relaxed);
            let n = 200u64;
            let mut x = 0x9E37_79B9u64;
            for _ in 0..n {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let first = (x >> 11) % (size as u64 - range);
                let r = store
                    .get_object(
                        &b,
                        &key,
                        None,
                        ReadRange::From {
                            first,
                            last: Some(first + range - 1),
                        },
                    )
                    .await
                    .expect("get");
                let mut body = r.body;
                let mut got = 0u64;
                while let Some(c) = body.next().await {
                    got += c.expect("chunk").len() as u64;
                }
                assert_eq!(got, range);
            }
            let read = stats.bytes_read.load(Ordering::Relaxed) - before;
            let asked = n * range;
            println!(
                "| {drives} ({}+{}) | {} | {n} | {asked} | {read} | {:.2}x |",
                layout.data(),
                layout.parity(),
                human(range),
                read as f64 / asked as f64
            );
        }
    }
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}
