//! The golden corpus: every case in `tests/golden/*.txt` runs a query over its data with
//! its serialization options and compares the output bytes (or the error code).
//!
//! Case format (one file holds many):
//! ```text
//! ### name
//! sql: SELECT ...
//! input: csv header=USE delimiter=; quote=' escape=\ comments=# | json lines | json document | parquet
//! output: csv quote=ALWAYS delimiter=| record=; | json record=;
//! compression: gzip | bzip2 | zstd (the test compresses the data itself, in two parts)
//! scan: START-END                  (either side may be empty)
//! data:
//! ...lines; the data ends with a newline unless `data-end: none` is given
//! expect:
//! ...output lines, or `error: Code`
//! ```

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use quarry_select::*;

struct Case {
    file: String,
    name: String,
    sql: String,
    input: String,
    output: String,
    compression: String,
    scan: Option<String>,
    data: String,
    data_end_newline: bool,
    crlf: bool,
    expect: Vec<String>,
}

fn parse_cases(file: &str, text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for block in text.split("\n### ").filter(|b| !b.trim().is_empty()) {
        let block = block.strip_prefix("### ").unwrap_or(block);
        let mut lines = block.lines();
        let name = lines.next().unwrap().trim().to_string();
        let mut c = Case {
            file: file.to_string(),
            name,
            sql: String::new(),
            input: "csv".into(),
            output: "csv".into(),
            compression: String::new(),
            scan: None,
            data: String::new(),
            data_end_newline: true,
            crlf: false,
            expect: Vec::new(),
        };
        let mut section = "";
        let mut data: Vec<&str> = Vec::new();
        for line in lines {
            match section {
                "data" if line != "expect:" => data.push(line),
                "expect" => c.expect.push(line.to_string()),
                _ => {
                    if line == "data:" {
                        section = "data";
                    } else if line == "expect:" {
                        section = "expect";
                    } else if let Some((k, v)) = line.split_once(": ") {
                        match k {
                            "sql" => c.sql = v.to_string(),
                            "input" => c.input = v.to_string(),
                            "output" => c.output = v.to_string(),
                            "compression" => c.compression = v.to_string(),
                            "scan" => c.scan = Some(v.to_string()),
                            "data-end" => c.data_end_newline = v != "none",
                            "data-crlf" => c.crlf = v == "yes",
                            other => panic!("{file}: {}: unknown key {other}", c.name),
                        }
                    } else if !line.trim().is_empty() && !line.starts_with('#') {
                        panic!("{file}: {}: cannot read line {line:?}", c.name);
                    }
                }
            }
            if line == "expect:" {
                section = "expect";
            }
        }
        while c.expect.last().is_some_and(|l| l.is_empty()) {
            c.expect.pop();
        }
        let nl = if c.crlf { "\r\n" } else { "\n" };
        c.data = data.join(nl);
        if c.data_end_newline && !data.is_empty() {
            c.data.push_str(nl);
        }
        cases.push(c);
    }
    cases
}

fn opts(spec: &str) -> (String, Vec<(String, String)>) {
    let mut words = spec.split_whitespace();
    let kind = words.next().unwrap_or("").to_string();
    let mut kv = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => kv.push((k.to_string(), unescape(v))),
            None => kv.push((w.to_string(), String::new())),
        }
    }
    (kind, kv)
}

fn unescape(v: &str) -> String {
    v.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r").replace("\\s", " ")
}

fn request(c: &Case) -> SelectRequest {
    let (kind, kv) = opts(&c.input);
    let get = |k: &str| kv.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let byte = |k: &str, d: u8| get(k).map_or(d, |v| v.as_bytes()[0]);
    let input = match kind.as_str() {
        "csv" => Input::Csv(CsvInput {
            file_header_info: match get("header").as_deref() {
                Some("USE") => FileHeaderInfo::Use,
                Some("IGNORE") => FileHeaderInfo::Ignore,
                _ => FileHeaderInfo::None,
            },
            field_delimiter: byte("delimiter", b','),
            record_delimiter: get("record").map(|v| v.as_bytes()[0]),
            quote: byte("quote", b'"'),
            quote_escape: byte("escape", byte("quote", b'"')),
            comments: get("comments").map(|v| v.as_bytes()[0]),
            allow_quoted_record_delimiter: get("allow-quoted-record").is_some(),
        }),
        "json" => Input::Json(JsonInput {
            kind: if kv.iter().any(|(k, _)| k == "document") {
                JsonType::Document
            } else {
                JsonType::Lines
            },
        }),
        "parquet" => Input::Parquet,
        other => panic!("unknown input {other}"),
    };
    let (okind, okv) = opts(&c.output);
    let oget = |k: &str| okv.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let output = match okind.as_str() {
        "csv" => Output::Csv(CsvOutput {
            quote_fields: if oget("quote").as_deref() == Some("ALWAYS") {
                QuoteFields::Always
            } else {
                QuoteFields::AsNeeded
            },
            field_delimiter: oget("delimiter").unwrap_or_else(|| ",".into()),
            record_delimiter: oget("record").unwrap_or_else(|| "\n".into()),
            quote: oget("quote-char").map_or('"', |v| v.chars().next().unwrap()),
            quote_escape: oget("escape").map_or('"', |v| v.chars().next().unwrap()),
        }),
        "json" => Output::Json(JsonOutput {
            record_delimiter: oget("record").unwrap_or_else(|| "\n".into()),
        }),
        other => panic!("unknown output {other}"),
    };
    let scan_range = c.scan.as_ref().map(|s| {
        let (a, b) = s.split_once('-').unwrap();
        ScanRange {
            start: a.parse().ok(),
            end: b.parse().ok(),
        }
    });
    SelectRequest {
        expression: c.sql.clone(),
        input,
        compression: match c.compression.as_str() {
            "gzip" => Compression::Gzip,
            "bzip2" => Compression::Bzip2,
            "zstd" => Compression::Zstd,
            _ => Compression::None,
        },
        output,
        request_progress: false,
        scan_range,
    }
}

fn data_bytes(c: &Case, dir: &Path) -> Vec<u8> {
    let raw = if let Some(file) = c.data.strip_prefix("@file ") {
        std::fs::read(dir.join(file.trim())).unwrap()
    } else if let Some(spec) = c.data.strip_prefix("@repeat ") {
        // `@repeat TEXT N`: TEXT N times, then a newline.
        let (text, n) = spec.trim().rsplit_once(' ').unwrap();
        let mut v = text.repeat(n.parse().unwrap()).into_bytes();
        v.push(b'\n');
        v
    } else {
        c.data.clone().into_bytes()
    };
    match c.compression.as_str() {
        "gzip" => {
            // Two gzip members: multi-member files must read as one.
            let half = raw.len() / 2;
            let mut out = Vec::new();
            for part in [&raw[..half], &raw[half..]] {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(part).unwrap();
                out.extend(e.finish().unwrap());
            }
            out
        }
        "bzip2" => {
            let half = raw.len() / 2;
            let mut out = Vec::new();
            for part in [&raw[..half], &raw[half..]] {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
                e.write_all(part).unwrap();
                out.extend(e.finish().unwrap());
            }
            out
        }
        "zstd" => {
            // Two frames, as `cat a.zst b.zst` or pzstd make.
            let half = raw.len() / 2;
            let mut out = Vec::new();
            for part in [&raw[..half], &raw[half..]] {
                out.extend(zstd::encode_all(part, 3).unwrap());
            }
            out
        }
        _ => raw,
    }
}

/// Run `req` over `data`: the records' bytes, or the error code.
pub async fn run(req: SelectRequest, data: Vec<u8>) -> Result<String, String> {
    let engine = Engine::default();
    let mut events = engine
        .start(req, Arc::new(MemorySource(data.into())))
        .await
        .map_err(|e| format!("error: {}\t{}", e.code.as_str(), e.message))?;
    let mut out = Vec::new();
    let mut ended = false;
    while let Some(ev) = events.next().await {
        match ev {
            Ok(Event::Records(b)) => out.extend_from_slice(&b),
            Ok(Event::End) => ended = true,
            Ok(_) => {}
            Err(e) => return Err(format!("error: {}\t{}", e.code.as_str(), e.message)),
        }
    }
    assert!(ended, "no End event");
    Ok(String::from_utf8(out).expect("output is UTF-8"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut count = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for c in parse_cases(&f.file_name().unwrap().to_string_lossy(), &text) {
            count += 1;
            let got = match run(request(&c), data_bytes(&c, &dir)).await {
                Ok(s) => s,
                Err(e) => e,
            };
            let want = if c.expect.len() == 1 && c.expect[0].starts_with("error: ") {
                c.expect[0].clone()
            } else if c.expect.is_empty() {
                String::new()
            } else {
                let mut w = c.expect.join("\n");
                w.push('\n');
                w
            };
            let got_cmp = if got.starts_with("error: ") {
                got.split('\t').next().unwrap_or("").to_string()
            } else {
                got.clone()
            };
            if got_cmp != want {
                failures.push(format!(
                    "* {} / {}\n  sql: {}\n  want: {:?}\n  got:  {:?}",
                    c.file, c.name, c.sql, want, got
                ));
            }
        }
    }
    assert!(count > 0, "no golden cases found");
    assert!(
        failures.is_empty(),
        "{} of {count} golden cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
