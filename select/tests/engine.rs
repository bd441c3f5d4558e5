//! The engine's behaviour beyond output bytes: Stats, pruning, admission limits, and a
//! differential test against DataFusion SQL on the same data, typed.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use quarry_select::*;

fn csv_request(sql: &str) -> SelectRequest {
    SelectRequest {
        expression: sql.into(),
        input: Input::Csv(CsvInput::default()),
        compression: Compression::None,
        output: Output::Csv(CsvOutput::default()),
        request_progress: false,
        scan_range: None,
    }
}

async fn run(engine: &Engine, req: SelectRequest, data: Vec<u8>) -> (String, Stats) {
    let mut events = engine.start(req, Arc::new(MemorySource(data.into()))).await.unwrap();
    let mut out = Vec::new();
    let mut stats = None;
    while let Some(ev) = events.next().await {
        match ev.unwrap() {
            Event::Records(b) => out.extend_from_slice(&b),
            Event::Stats(s) => stats = Some(s),
            _ => {}
        }
    }
    (String::from_utf8(out).unwrap(), stats.expect("a Stats event"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_bytes_honestly() {
    let data = b"a,1\nb,2\nc,3\n".to_vec();
    let (out, stats) = run(
        &Engine::default(),
        csv_request("SELECT _1 FROM S3Object WHERE _2 > 1"),
        data.clone(),
    )
    .await;
    assert_eq!(out, "b\nc\n");
    assert_eq!(
        stats,
        Stats {
            bytes_scanned: data.len() as u64,
            bytes_processed: data.len() as u64,
            bytes_returned: out.len() as u64,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_row_groups_are_pruned_by_statistics() {
    let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/items.parquet")).unwrap();
    let req = |sql: &str| SelectRequest {
        input: Input::Parquet,
        ..csv_request(sql)
    };
    let engine = Engine::default();
    let (all, full) = run(&engine, req("SELECT id, name FROM S3Object WHERE qty >= 0"), file.clone()).await;
    assert_eq!(all.lines().count(), 5);
    // ids 1-3 are the first row group, 4-5 the second: `id > 3` needs only the second.
    let (some, pruned) = run(&engine, req("SELECT id, name FROM S3Object WHERE id > 3"), file.clone()).await;
    assert_eq!(some, "4,dora\n5,émile\n");
    assert!(pruned.bytes_scanned < full.bytes_scanned, "{pruned:?} vs {full:?}");
    // A bound no group can meet reads no row group at all, and is still correct.
    let (none, _) = run(&engine, req("SELECT id FROM S3Object WHERE id BETWEEN 100 AND 200"), file.clone()).await;
    assert_eq!(none, "");
    // OR is not a conjunct: nothing may be pruned.
    let (or, _) = run(&engine, req("SELECT id FROM S3Object WHERE id > 4 OR id < 2"), file).await;
    assert_eq!(or, "1\n5\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_limits_queue_then_refuse() {
    let engine = Engine::new(Limits {
        max_concurrent: 1,
        queue_wait: Duration::from_millis(200),
        ..Limits::default()
    });
    let big: Vec<u8> = (0..200_000).flat_map(|i| format!("{i}\n").into_bytes()).collect();
    // The first query holds the only slot while its stream is alive.
    let held = engine
        .start(csv_request("SELECT _1 FROM S3Object"), Arc::new(MemorySource(big.clone().into())))
        .await
        .unwrap();
    let err = engine
        .start(csv_request("SELECT _1 FROM S3Object"), Arc::new(MemorySource(big.clone().into())))
        .await
        .err()
        .expect("the second query must not get a slot");
    assert_eq!(err.code, Code::Busy);
    drop(held);
    // Once the slot is free, queries run again.
    let (out, _) = run(&engine, csv_request("SELECT COUNT(*) FROM S3Object"), big).await;
    assert_eq!(out, "200000\n");
}

/// SplitMix64: deterministic data without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Rows rendered as lines of comma-separated text, sorted, for order-free comparison.
fn rows_of(batches: &[RecordBatch]) -> Vec<String> {
    let opts = FormatOptions::default().with_null("");
    let mut rows = Vec::new();
    for b in batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            rows.push(fmts.iter().map(|f| f.value(r).to_string()).collect::<Vec<_>>().join(","));
        }
    }
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_agrees_with_datafusion_on_typed_data() {
    let words = ["ant", "bee", "cat", "dog", "eel", "fox"];
    let engine = Engine::default();
    for seed in 1..=4u64 {
        let mut rng = Rng(seed);
        let n = 500 + (rng.next() % 3000) as usize;
        let a: Vec<i64> = (0..n).map(|_| (rng.next() % 200) as i64 - 100).collect();
        let b: Vec<&str> = (0..n).map(|_| words[(rng.next() % words.len() as u64) as usize]).collect();
        let c: Vec<i64> = (0..n).map(|_| (rng.next() % 1000) as i64).collect();
        let csv: String = (0..n).map(|i| format!("{},{},{}\n", a[i], b[i], c[i])).collect();

        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, false),
            Field::new("c", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(a.clone())),
                Arc::new(StringArray::from(b.clone())),
                Arc::new(Int64Array::from(c.clone())),
            ],
        )
        .unwrap();
        let ctx = SessionContext::new();
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()))
            .unwrap();

        let pairs = [
            (
                "SELECT _1, _2 FROM S3Object WHERE CAST(_1 AS INT) > 10",
                "SELECT a, b FROM t WHERE a > 10",
            ),
            (
                "SELECT COUNT(*), SUM(CAST(_3 AS INT)), MIN(CAST(_1 AS INT)), MAX(CAST(_1 AS INT)) FROM S3Object WHERE _2 = 'cat'",
                "SELECT COUNT(*), SUM(c), MIN(a), MAX(a) FROM t WHERE b = 'cat'",
            ),
            (
                "SELECT _2, COUNT(*), SUM(CAST(_1 AS INT)) FROM S3Object GROUP BY _2",
                "SELECT b, COUNT(*), SUM(a) FROM t GROUP BY b",
            ),
            (
                "SELECT _3 FROM S3Object WHERE CAST(_3 AS INT) BETWEEN 100 AND 200 AND _2 LIKE '%o%'",
                "SELECT c FROM t WHERE c BETWEEN 100 AND 200 AND b LIKE '%o%'",
            ),
            (
                "SELECT UPPER(_2), CAST(_1 AS INT) * 2 + CAST(_3 AS INT) FROM S3Object WHERE _2 IN ('ant', 'eel') OR CAST(_1 AS INT) < -90",
                "SELECT UPPER(b), a * 2 + c FROM t WHERE b IN ('ant', 'eel') OR a < -90",
            ),
            (
                "SELECT CASE WHEN CAST(_1 AS INT) >= 0 THEN 'pos' ELSE 'neg' END, _2 FROM S3Object WHERE CHAR_LENGTH(_2) = 3 AND CAST(_3 AS INT) % 7 = 0",
                "SELECT CASE WHEN a >= 0 THEN 'pos' ELSE 'neg' END, b FROM t WHERE character_length(b) = 3 AND c % 7 = 0",
            ),
        ];
        for (ours, reference) in pairs {
            let (out, _) = run(&engine, csv_request(ours), csv.clone().into_bytes()).await;
            let mut got: Vec<String> = out.lines().map(str::to_string).collect();
            got.sort();
            let want = rows_of(&ctx.sql(reference).await.unwrap().collect().await.unwrap());
            assert_eq!(got, want, "seed {seed}: {ours}");
        }
    }
}

/// The first error a query ends with, whether before its stream or inside it.
async fn error_of(req: SelectRequest, data: Vec<u8>) -> Option<Code> {
    let mut events = match Engine::default().start(req, Arc::new(MemorySource(data.into()))).await {
        Ok(e) => e,
        Err(e) => return Some(e.code),
    };
    while let Some(ev) = events.next().await {
        if let Err(e) = ev {
            return Some(e.code);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_or_truncated_compressed_input_is_invalid_compression_format() {
    use std::io::Write;
    let plain: Vec<u8> = (0..50_000).flat_map(|i| format!("{i},x{i}\n").into_bytes()).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&plain).unwrap();
    let bz = bz.finish().unwrap();
    let zs = zstd::encode_all(&plain[..], 3).unwrap();
    for (compression, good) in [(Compression::Gzip, gz), (Compression::Bzip2, bz), (Compression::Zstd, zs)] {
        let req = || SelectRequest {
            compression,
            ..csv_request("SELECT COUNT(*) FROM S3Object")
        };
        assert_eq!(error_of(req(), good.clone()).await, None, "{compression:?} intact");
        let (out, _) = run(&Engine::default(), req(), good.clone()).await;
        assert_eq!(out, "50000\n", "{compression:?}");
        let truncated = good[..good.len() - 7].to_vec();
        assert_eq!(
            error_of(req(), truncated).await,
            Some(Code::InvalidCompressionFormat),
            "{compression:?} truncated"
        );
        assert_eq!(
            error_of(req(), plain[..4000].to_vec()).await,
            Some(Code::InvalidCompressionFormat),
            "{compression:?} over plain bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_blocks_with_quoted_newlines_read_as_one_parse() {
    // Several MiB, so the input spans many parallel blocks; every fifth record has a
    // quoted field with newlines in it, so some blocks must be parsed again.
    let mut data = b"id,text,n\n".to_vec();
    let mut expect_len = 0u64;
    for i in 0..120_000u64 {
        let text = if i % 5 == 0 {
            format!("\"line {i}\nnext, \"\"quoted\"\"\nend\"")
        } else {
            format!("plain {i}")
        };
        expect_len += text.len() as u64;
        data.extend_from_slice(format!("{i},{text},{}\n", i % 7).as_bytes());
    }
    let req = SelectRequest {
        input: Input::Csv(CsvInput {
            file_header_info: FileHeaderInfo::Use,
            allow_quoted_record_delimiter: true,
            ..CsvInput::default()
        }),
        ..csv_request("SELECT COUNT(*), SUM(CAST(n AS INT)), SUM(CHAR_LENGTH(text)), MAX(CAST(id AS INT)) FROM S3Object")
    };
    let (out, stats) = run(&Engine::default(), req, data.clone()).await;
    let sum_n: u64 = (0..120_000u64).map(|i| i % 7).sum();
    // CHAR_LENGTH counts the field's value: quoted `""` is one character, quotes dropped.
    let quoted_fields = 24_000u64;
    let value_len = expect_len - quoted_fields * (2 + 2);
    assert_eq!(out, format!("120000,{sum_n},{value_len},119999\n"));
    assert_eq!(stats.bytes_processed, data.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_over_many_blocks_keep_order_and_errors() {
    // ~5 MiB: many parallel blocks; LIMIT must see the file's first rows, in order.
    let mut data = Vec::new();
    for i in 0..100_000u64 {
        data.extend_from_slice(format!("{{\"id\":{i},\"pad\":\"{}\",\"g\":{}}}\n", "x".repeat((i % 50) as usize), i % 3).as_bytes());
    }
    let json = |sql: &str| SelectRequest {
        input: Input::Json(JsonInput { kind: JsonType::Lines }),
        ..csv_request(sql)
    };
    let (out, stats) = run(
        &Engine::default(),
        json("SELECT COUNT(*), SUM(s.id) FROM S3Object s WHERE s.g = 1"),
        data.clone(),
    )
    .await;
    let expect: u64 = (0..100_000u64).filter(|i| i % 3 == 1).sum();
    assert_eq!(out, format!("33333,{expect}\n"));
    assert_eq!(stats.bytes_processed, data.len() as u64);
    let (out, _) = run(&Engine::default(), json("SELECT s.id FROM S3Object s LIMIT 5"), data.clone()).await;
    assert_eq!(out, "0\n1\n2\n3\n4\n");
    let (out, _) = run(&Engine::default(), json("SELECT s.id FROM S3Object s"), data.clone()).await;
    let ids: Vec<u64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(ids, (0..100_000).collect::<Vec<_>>());
    // A broken record deep in the file fails the query with its code.
    let mut bad = data.clone();
    let at = bad.len() - 1000;
    let close = at + bad[at..].iter().position(|&b| b == b'}').unwrap();
    bad[close] = b']';
    assert_eq!(
        error_of(json("SELECT s.id FROM S3Object s"), bad).await,
        Some(Code::JSONParsingError)
    );
}
