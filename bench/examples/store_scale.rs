//! The store at scale (issue 14's goals, through the storage API): fill a one-drive
//! store's bucket with N small objects (inline, 64 bytes: the metadata is what scales),
//! written by 256 concurrent writers so group commit batches them; then reopen it and
//! measure open time, RSS, LIST pages (plain and with a delimiter), ListObjectVersions
//! pages and HEADs; last, each index table's size as redb counts it (stored bytes, leaf
//! pages, fragmentation), to see what a page has to read.
//!
//! `cargo build --profile ci -p quarry-bench --example store_scale &&
//!  target/ci/examples/store_scale N DIR` (`STORE_SCALE_REUSE=1`: measure what a previous
//! run left in DIR, without loading; `STORE_SCALE_CACHE_MIB`: the index cache, default
//! the store's).

use bytes::Bytes;
use quarry_bench::{duration_quantile as percentile, rss_mib};
use quarry_storage::{BucketName, ListQuery, ObjectAttrs, ObjectKey, Store, StoreOptions, WriteCondition};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PAGE: usize = 1000;
const WRITERS: u64 = 256;

/// The i-th key: 1,000-key "directories" of dataset-like names.
fn key(i: u64) -> String {
    format!("data/part-{:05}/sample-{:08}.tfrecord", i / 1000, i)
}

/// Time `f` on `times` inputs from `input` (which is not timed).
fn timed<T>(times: usize, mut input: impl FnMut() -> T, mut f: impl FnMut(T)) -> Vec<Duration> {
    (0..times)
        .map(|_| {
            let x = input();
            let t = Instant::now();
            f(x);
            t.elapsed()
        })
        .collect()
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
    let mut opts = StoreOptions::default();
    if let Some(mib) = std::env::var("STORE_SCALE_CACHE_MIB").ok().and_then(|v| v.parse::<usize>().ok()) {
        opts.index_cache_bytes = mib << 20;
    }
    let store = Store::open(&dir, opts).await.expect("reopen");
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
    let mut pages = timed(
        200,
        || key(rand(n)),
        |start| {
            let p = store.list_objects(&b, &page_after(&start)).unwrap();
            // Only a start at the last key lists nothing.
            assert!(!p.items.is_empty() || start == key(n - 1));
        },
    );
    let rss_list = rss_mib();
    // Delimiter pages: every 1,000-key directory is one common prefix.
    let dirs = n / 1000;
    let mut delim = timed(
        20,
        || format!("data/part-{:05}/", rand(dirs.max(1))),
        |start| {
            let q = ListQuery {
                prefix: "data/",
                delimiter: Some("/"),
                start_after: Some(&start),
                max: PAGE,
            };
            assert!(store.list_objects(&b, &q).unwrap().items.len() <= PAGE);
        },
    );
    // ListObjectVersions pages.
    let mut versions = timed(
        100,
        || key(rand(n)),
        |start| {
            store.list_versions(&b, &page_after(&start), None).unwrap();
        },
    );
    // HEADs of random keys.
    let mut heads = timed(
        5_000,
        || ObjectKey::new(&key(rand(n))).unwrap(),
        |k| {
            store.head_object(&b, &k, None).unwrap();
        },
    );
    let rss_end = rss_mib();
    println!(
        "objects {n}: index {:.0} MiB ({:.0} B/object); open {}; RSS before open {rss0:.0} MiB, after open {rss_open:.0} MiB, after listing {rss_list:.0} MiB, after everything {rss_end:.0} MiB",
        file as f64 / 1048576.0,
        file as f64 / n as f64,
        ms(open)
    );
    println!(
        "LIST 1,000 p50 {} p99 {}; delimiter ({} prefixes a page max) p50 {} p99 {}; versions p50 {} p99 {}; HEAD p50 {:.1} µs p99 {:.1} µs",
        ms(percentile(&mut pages, 0.5)),
        ms(percentile(&mut pages, 0.99)),
        PAGE.min(dirs as usize),
        ms(percentile(&mut delim, 0.5)),
        ms(percentile(&mut delim, 0.99)),
        ms(percentile(&mut versions, 0.5)),
        ms(percentile(&mut versions, 0.99)),
        percentile(&mut heads, 0.5).as_secs_f64() * 1e6,
        percentile(&mut heads, 0.99).as_secs_f64() * 1e6
    );
    drop(store);
    // The index file is locked until its committer threads end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    table_stats(&dir.join(".quarry/index.redb"));
}

/// Per table: entries' bytes, leaf and branch pages, fragmented bytes.
fn table_stats(path: &std::path::Path) {
    use redb::{ReadableDatabase, ReadableTableMetadata};
    let db = match redb::Database::open(path) {
        Ok(db) => db,
        Err(e) => return eprintln!("table stats: {e}"),
    };
    let txn = db.begin_read().expect("read transaction");
    for handle in txn.list_tables().expect("tables") {
        let name = redb::TableHandle::name(&handle).to_owned();
        let t = txn.open_untyped_table(handle).expect("table");
        let st = t.stats().expect("stats");
        let mib = |b: u64| b as f64 / 1048576.0;
        println!(
            "table {name}: {} entries, {:.1} MiB stored, {} leaf + {} branch pages ({:.1} MiB), height {}, {:.1} MiB fragmented",
            t.len().expect("len"),
            mib(st.stored_bytes()),
            st.leaf_pages(),
            st.branch_pages(),
            mib((st.leaf_pages() + st.branch_pages()) * 4096),
            st.tree_height(),
            mib(st.fragmented_bytes())
        );
    }
}

/// A page of `PAGE` keys after `start`, no prefix or delimiter.
fn page_after(start: &str) -> ListQuery<'_> {
    ListQuery {
        start_after: Some(start),
        max: PAGE,
        ..Default::default()
    }
}
