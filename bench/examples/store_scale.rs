//! The store at scale (issue 14's goals, through the storage API): fill a one-drive
//! store's bucket with N small objects (inline, 64 bytes: the metadata is what scales),
//! written by 256 concurrent writers so group commit batches them; then reopen it and
//! measure open time, RSS, LIST pages (plain and with a delimiter), ListObjectVersions
//! pages and HEADs.
//!
//! `cargo build --profile ci -p quarry-bench --example store_scale &&
//!  target/ci/examples/store_scale N DIR` (`STORE_SCALE_REUSE=1`: measure what a previous
//! run left in DIR, without loading).

use bytes::Bytes;
use quarry_storage::{BucketName, ListQuery, ObjectAttrs, ObjectKey, Store, StoreOptions, WriteCondition};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PAGE: usize = 1000;
const WRITERS: u64 = 256;

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The i-th key: 1,000-key "directories" of dataset-like names.
fn key(i: u64) -> String {
    format!("data/part-{:05}/sample-{:08}.tfrecord", i / 1000, i)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn load(store: &Store, b: &BucketName, n: u64) {
    let next = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (store, b, next) = (store.clone(), b.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let body = Bytes::from(format!("{i:064}"));
                let staged = store
                    .stage(&b, futures::stream::iter([Ok::<_, std::io::Error>(body)]), None, Some(64))
                    .await
                    .expect("stage");
                store
                    .commit_object(
                        &b,
                        &ObjectKey::new(&key(i)).unwrap(),
                        staged,
                        ObjectAttrs::default(),
                        &WriteCondition::default(),
                    )
                    .await
                    .expect("commit");
                if i % 1_000_000 == 0 && i > 0 {
                    eprintln!("loaded {i} in {:.1} s", t.elapsed().as_secs_f64());
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    println!("load: {n} objects in {s:.1} s ({:.0}/s)", n as f64 / s);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir: std::path::PathBuf = args.next().expect("DIR").into();
    let b = BucketName::new("scale").unwrap();
    if std::env::var_os("STORE_SCALE_REUSE").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir, StoreOptions::default()).await.expect("open");
        store.create_bucket(&b).await.unwrap();
        load(&store, &b, n).await;
        drop(store);
        // Let the store's last background task (the index committers) finish.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let file = std::fs::metadata(dir.join(".quarry/index.redb")).map_or(0, |m| m.len());
    let rss0 = rss_mib();
    let t = Instant::now();
    let store = Store::open(&dir, StoreOptions::default()).await.expect("reopen");
    let open = t.elapsed();
    let rss_open = rss_mib();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m.max(1)
    };
    // Plain pages from random places.
    let mut pages = Vec::new();
    for _ in 0..200 {
        let start = key(rand(n));
        let q = ListQuery {
            start_after: Some(&start),
            max: PAGE,
            ..Default::default()
        };
        let t = Instant::now();
        let p = store.list_objects(&b, &q).unwrap();
        pages.push(t.elapsed());
        assert!(!p.items.is_empty() || n < 2 * PAGE as u64);
    }
    let rss_list = rss_mib();
    // Delimiter pages: every 1,000-key directory is one common prefix.
    let mut delim = Vec::new();
    let dirs = n / 1000;
    for _ in 0..20 {
        let start = format!("data/part-{:05}/", rand(dirs.max(1)));
        let q = ListQuery {
            prefix: "data/",
            delimiter: Some("/"),
            start_after: Some(&start),
            max: PAGE,
        };
        let t = Instant::now();
        let p = store.list_objects(&b, &q).unwrap();
        delim.push(t.elapsed());
        assert!(p.items.len() <= PAGE);
    }
    // ListObjectVersions pages.
    let mut versions = Vec::new();
    for _ in 0..100 {
        let start = key(rand(n));
        let q = ListQuery {
            start_after: Some(&start),
            max: PAGE,
            ..Default::default()
        };
        let t = Instant::now();
        store.list_versions(&b, &q, None).unwrap();
        versions.push(t.elapsed());
    }
    // HEADs of random keys.
    let mut heads = Vec::new();
    for _ in 0..5_000 {
        let k = ObjectKey::new(&key(rand(n))).unwrap();
        let t = Instant::now();
        store.head_object(&b, &k, None).unwrap();
        heads.push(t.elapsed());
    }
    let rss_end = rss_mib();
    println!(
        "objects {n}: index {:.0} MiB ({:.0} B/object); open {}; RSS before open {rss0:.0} MiB, after open {rss_open:.0} MiB, after listing {rss_list:.0} MiB, after everything {rss_end:.0} MiB",
        file as f64 / 1048576.0,
        file as f64 / n as f64,
        ms(open)
    );
    println!(
        "LIST 1,000 p50 {} p99 {}; delimiter ({} prefixes a page max) p50 {} p99 {}; versions p50 {} p99 {}; HEAD p50 {:.1} µs p99 {:.1} µs",
        ms(pct(&mut pages, 0.5)),
        ms(pct(&mut pages, 0.99)),
        PAGE.min(dirs as usize),
        ms(pct(&mut delim, 0.5)),
        ms(pct(&mut delim, 0.99)),
        ms(pct(&mut versions, 0.5)),
        ms(pct(&mut versions, 0.99)),
        pct(&mut heads, 0.5).as_secs_f64() * 1e6,
        pct(&mut heads, 0.99).as_secs_f64() * 1e6
    );
}
