//! The metadata index at scale: load N keys into one drive's index the way a bucket of N
//! objects lays them out (a `Current` listing entry and a `Versions` record per key, in
//! batches as group commit makes them), then measure what the issue's goals name: open
//! time, resident memory, a 1,000-key page (plain and with a delimiter over 1,000-key
//! "directories"), and a point read of one version (a HEAD).
//!
//! `cargo run --release -p quarry-bench --example index_scale -- 1000000 [DIR]`
//! (DIR defaults to a temporary directory; give one on a real disk for real figures).

use quarry_bench::{duration_quantile as percentile, rss_mib};
use quarry_storage::index::{Batch, Index, Table, keys};
use std::ops::Bound;
use std::time::Instant;

const PAGE: usize = 1000;

/// The i-th key: 1,000-key "directories" of dataset-like names.
fn key(i: u64) -> String {
    format!("data/part-{:05}/sample-{:08}.tfrecord", i / 1000, i)
}

fn record(i: u64) -> Vec<u8> {
    // The size of a real version record: etag, size, time, checksum, one part.
    format!(
        r#"{{"version_id":null,"size":{},"etag":"{:032x}","last_modified":{{"secs_since_epoch":1764547200,"nanos_since_epoch":{}}},"attrs":{{"content_type":"application/octet-stream","user":{{}},"storage_class":null}},"checksum":{{"algorithm":"Crc32","value":"AAAAAA==","kind":"FullObject"}},"multipart":false,"parts":[{{"number":1,"size":4096,"etag":"{:032x}","checksum":null,"data_id":"{:032x}"}}],"inline_at":null}}"#,
        4096 + i % 100,
        i,
        i % 1_000_000_000,
        i,
        i * 7
    )
    .into_bytes()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = args.next().map_or_else(|| tmp.path().to_owned(), Into::into);
    let path = dir.join("index-scale.redb");
    // INDEX_SCALE_REUSE=1 measures an index a previous run left (its open, not its load).
    let reuse = std::env::var_os("INDEX_SCALE_REUSE").is_some() && path.exists();
    if !reuse {
        let _ = std::fs::remove_file(&path);
    }
    let cache = 64 << 20;
    let bucket = "bench";

    let started = Instant::now();
    if !reuse {
        let ix = Index::open_redb(path.clone(), cache, 16).expect("open");
        let per_batch = 5000u64;
        let mut i = 0;
        while i < n {
            let mut b = Batch::new();
            for j in i..(i + per_batch).min(n) {
                let k = key(j);
                let rec = record(j);
                b.put(Table::Current, keys::current(bucket, &k), &rec[..120]);
                b.put(Table::Versions, keys::version(bucket, &k, j + 1), &rec);
            }
            ix.commit_blocking(b).expect("load");
            i += per_batch;
        }
    }
    let load = started.elapsed();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let rss_before = rss_mib();
    let t = Instant::now();
    let ix = Index::open_redb(path.clone(), cache, 16).expect("reopen");
    let open = t.elapsed();

    // Pages from random places, plain.
    let mut page = Vec::new();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..200 {
        let from = keys::current(bucket, &key(rnd() % n));
        let end = keys::prefix_end(&keys::bucket_prefix(bucket));
        let t = Instant::now();
        let mut got = 0;
        ix.scan(Table::Current, Bound::Included(&from), Bound::Excluded(&end), |_, _| {
            got += 1;
            Ok(got < PAGE)
        })
        .expect("page");
        page.push(t.elapsed());
    }
    // Delimiter "/" under "data/": each directory is one common prefix; the listing seeks
    // past it instead of reading its keys.
    let mut delim = Vec::new();
    for _ in 0..50 {
        let start_dir = rnd() % (n / 1000).max(1);
        let t = Instant::now();
        let mut from = keys::current(bucket, &format!("data/part-{start_dir:05}/"));
        let mut prefixes = 0;
        let end = keys::prefix_end(&keys::current(bucket, "data/"));
        while prefixes < PAGE {
            let mut next = None;
            ix.scan(Table::Current, Bound::Included(&from), Bound::Excluded(&end), |k, _| {
                let name = keys::current_object_key(bucket, k).expect("key");
                let rest = &name["data/".len()..];
                if let Some(at) = rest.find('/') {
                    next = Some(keys::prefix_end(&keys::current(bucket, &name[..5 + at + 1])));
                }
                Ok(false)
            })
            .expect("delimiter page");
            match next {
                Some(n) => {
                    from = n;
                    prefixes += 1;
                }
                None => break,
            }
        }
        delim.push(t.elapsed());
    }
    let mut head = Vec::new();
    for _ in 0..2000 {
        let k = key(rnd() % n);
        let t = Instant::now();
        let v = ix.scan_prefix(Table::Versions, &keys::object(bucket, &k), 1).expect("head");
        assert_eq!(v.len(), 1);
        head.push(t.elapsed());
    }
    let rss_after = rss_mib();
    println!(
        "| keys | load | file | open | page p50 | page p99 | delimiter page p50 | HEAD p50 | HEAD p99 | RSS before open | RSS after reads |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {:.1} s | {:.0} MiB | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} µs | {:.1} µs | {rss_before:.0} MiB | {rss_after:.0} MiB |",
        load.as_secs_f64(),
        size as f64 / (1 << 20) as f64,
        open.as_secs_f64() * 1e3,
        percentile(&mut page, 0.5).as_secs_f64() * 1e3,
        percentile(&mut page, 0.99).as_secs_f64() * 1e3,
        percentile(&mut delim, 0.5).as_secs_f64() * 1e3,
        percentile(&mut head, 0.5).as_secs_f64() * 1e6,
        percentile(&mut head, 0.99).as_secs_f64() * 1e6,
    );
}
