//! Robustness: random SQL over random CSV, JSON and Parquet bytes must end in records or an
//! S3 error, never a panic (in any thread: a hook counts them) and never a hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use proptest::prelude::*;
use quarry_select::*;

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// Run one query to its end: whether it answered without an error; `Err` says what went
/// wrong in a way the test rejects.
fn run(req: SelectRequest, data: Vec<u8>) -> Result<bool, String> {
    count_panics();
    let before = PANICS.load(Ordering::SeqCst);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sql = req.expression.clone();
    let outcome = rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(20), async move {
            let engine = Engine::default();
            let mut events = match engine.start(req, Arc::new(MemorySource(data.into()))).await {
                Ok(e) => e,
                Err(e) => return Some(e),
            };
            while let Some(ev) = events.next().await {
                if let Err(e) = ev {
                    return Some(e);
                }
            }
            None
        })
        .await
    });
    drop(rt);
    if PANICS.load(Ordering::SeqCst) != before {
        return Err(format!("a panic while running {sql:?}"));
    }
    match outcome {
        Err(_) => Err(format!("{sql:?} did not finish in 20 s")),
        Ok(Some(e)) if e.code == Code::InternalError => Err(format!("{sql:?}: internal error {}", e.message)),
        Ok(Some(_)) => Ok(false),
        Ok(None) => Ok(true),
    }
}

const ATOMS: &[&str] = &[
    "_1",
    "_2",
    "_3",
    "s._1",
    "s.a",
    "s.a.b",
    "s.a[0]",
    "s.\"x y\"",
    "name",
    "\"Name\"",
    "1",
    "0",
    "-3",
    "2.5",
    "1e3",
    "'abc'",
    "''",
    "'%a_'",
    "NULL",
    "TRUE",
    "`2007T`",
    "'2020-01-01T00:00:00Z'",
];

const FUNCS: &[&str] = &[
    "LOWER",
    "UPPER",
    "CHAR_LENGTH",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "COALESCE",
    "NULLIF",
    "TO_TIMESTAMP",
    "UTCNOW",
    "ABS",
];

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(ATOMS).prop_map(str::to_string);
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(&["+", "-", "*", "/", "%", "=", "<>", "<", ">=", "AND", "OR", "||", "LIKE"][..]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("NOT {a}")),
            (
                inner.clone(),
                prop::sample::select(&["IS NULL", "IS NOT MISSING", "IS MISSING"][..])
            )
                .prop_map(|(a, t)| format!("{a} {t}")),
            (prop::sample::select(FUNCS), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (
                inner.clone(),
                prop::sample::select(&["INT", "FLOAT", "DECIMAL", "STRING", "BOOL", "TIMESTAMP"][..])
            )
                .prop_map(|(a, t)| format!("CAST({a} AS {t})")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| format!("{a} BETWEEN {b} AND {c}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} IN ({b}, 1, 'x')")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| format!("CASE WHEN {a} THEN {b} ELSE {c} END")),
            (inner.clone(), 0i64..5, 0i64..5).prop_map(|(a, f, n)| format!("SUBSTRING({a} FROM {f} FOR {n})")),
            inner.clone().prop_map(|a| format!("TRIM(LEADING 'a' FROM {a})")),
            (
                prop::sample::select(&["year", "month", "day", "hour", "minute", "second"][..]),
                inner.clone()
            )
                .prop_map(|(p, a)| format!("DATE_ADD({p}, 1, {a})")),
            inner.clone().prop_map(|a| format!("TO_STRING({a}, 'yyyy-MM-dd')")),
            inner.prop_map(|a| format!("EXTRACT(YEAR FROM {a})")),
        ]
    })
}

/// Mostly well-formed queries, so they reach planning and execution.
fn query() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(expr(), 1..4),
        prop::sample::select(&["S3Object", "S3Object s", "S3Object[*] s", "S3Object[*].a[*] s", "s3object AS s"][..]),
        prop::option::of(expr()),
        prop::option::of(0u32..5),
        any::<bool>(),
    )
        .prop_map(|(cols, from, filter, limit, star)| {
            let list = if star { "*".to_string() } else { cols.join(", ") };
            let mut q = format!("SELECT {list} FROM {from}");
            if let Some(f) = filter {
                q += &format!(" WHERE {f}");
            }
            if let Some(n) = limit {
                q += &format!(" LIMIT {n}");
            }
            q
        })
}

/// Token soup: text that is rarely SQL, for the parser's error paths.
fn soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(
            &[
                "SELECT",
                "FROM",
                "WHERE",
                "LIMIT",
                "S3Object",
                "(",
                ")",
                ",",
                "*",
                "[",
                "]",
                ".",
                "'",
                "\"",
                "AS",
                "CAST",
                "ESCAPE",
                "LIKE",
                "MISSING",
                "IS",
                ";",
                "--",
                "/*",
                "`",
                "[*]",
                "s",
                "_0",
                "_99999999999999999999",
            ][..]
        )
        .prop_map(str::to_string),
        "[ -~]{0,6}",
        "\\PC{0,3}",
    ];
    prop::collection::vec(token, 0..16).prop_map(|t| t.join(" "))
}

/// Bytes that look like CSV or JSON now and then.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::sample::select(
            &[
                "1", "22", "-3.5", "abc", ",", ";", "\n", "\r\n", "\r", "\"", "\"\"", "\\", "#", "{", "}", "[", "]", ":", "\"a\"",
                "\"b\":", "null", "true", "é", "😀", "\t", " ",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..4),
    ];
    prop::collection::vec(piece, 0..200).prop_map(|p| p.concat())
}

fn csv_input() -> impl Strategy<Value = Input> {
    (
        prop::sample::select(&[FileHeaderInfo::Use, FileHeaderInfo::Ignore, FileHeaderInfo::None][..]),
        prop::sample::select(&[b',', b';', b'\t', b'"'][..]),
        prop::option::of(prop::sample::select(&[b'\n', b';', b'\r'][..])),
        prop::sample::select(&[b'"', b'\''][..]),
        prop::sample::select(&[b'"', b'\\'][..]),
        prop::option::of(Just(b'#')),
    )
        .prop_map(|(h, d, r, q, e, c)| {
            Input::Csv(CsvInput {
                file_header_info: h,
                field_delimiter: d,
                record_delimiter: r,
                quote: q,
                quote_escape: e,
                comments: c,
                allow_quoted_record_delimiter: false,
            })
        })
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        3 => csv_input(),
        1 => Just(Input::Json(JsonInput { kind: JsonType::Lines })),
        1 => Just(Input::Json(JsonInput { kind: JsonType::Document })),
        1 => Just(Input::Parquet),
    ]
}

fn request(sql: String, input: Input, json_out: bool, scan: Option<(u64, u64)>) -> SelectRequest {
    SelectRequest {
        expression: sql,
        input,
        compression: Compression::None,
        output: if json_out {
            Output::Json(JsonOutput::default())
        } else {
            Output::Csv(CsvOutput::default())
        },
        request_progress: false,
        scan_range: scan.map(|(a, b)| ScanRange {
            start: Some(a),
            end: Some(b),
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_queries_over_random_bytes_end_cleanly(
        sql in query(), input in input(), data in bytes(), json_out in any::<bool>(),
        scan in prop::option::of((0u64..300, 0u64..300)),
    ) {
        let scan = match input {
            Input::Csv(_) => scan,
            _ => None,
        };
        run(request(sql, input, json_out, scan), data).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn token_soup_is_an_error_not_a_crash(sql in soup(), input in input(), data in bytes()) {
        run(request(sql, input, false, None), data).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn random_compressed_bytes_are_refused_cleanly(
        data in bytes(),
        compression in prop::sample::select(&[Compression::Gzip, Compression::Bzip2, Compression::Zstd][..]),
    ) {
        let mut req = request("SELECT * FROM S3Object".into(), Input::Csv(CsvInput::default()), false, None);
        req.compression = compression;
        run(req, data).map_err(TestCaseError::fail)?;
    }
}

/// Valid queries over valid data in shapes the generators above seldom reach.
#[test]
fn generated_queries_over_real_data_run() {
    let csv = b"name,n,when\nada,1,2020-01-01T00:00:00Z\nbob,x,\n\"c,d\",3,2021-06-01T12:00:00Z\n".to_vec();
    let json = b"{\"a\":{\"b\":1},\"name\":\"ada\"}\n{\"a\":[1,{\"b\":2}]}\n{}\n".to_vec();
    let answered = AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(query(), any::<bool>()), |(sql, json_input)| {
            let (input, data) = if json_input {
                (Input::Json(JsonInput { kind: JsonType::Lines }), json.clone())
            } else {
                (
                    Input::Csv(CsvInput {
                        file_header_info: FileHeaderInfo::Use,
                        ..CsvInput::default()
                    }),
                    csv.clone(),
                )
            };
            if run(request(sql, input, json_input, None), data).map_err(TestCaseError::fail)? {
                answered.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    // The generator must reach execution, not only the error paths.
    let answered = answered.into_inner();
    assert!(answered >= 256 / 10, "only {answered} of 256 generated queries answered");
}
