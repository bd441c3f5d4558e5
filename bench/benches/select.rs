//! S3 Select's scan kernels through `quarry-select`'s public API: lineitem (quarry-datasets)
//! as CSV, JSON lines and Parquet in memory, one query per shape, throughput in input bytes;
//! next to them, in the same run, the plain arrow-csv, arrow-json and parquet readers
//! decoding the same bytes into the 4 columns the filter+project query reads (the floor a
//! Select scan is measured against: the ratio is the figure).
//! `cargo bench -p quarry-bench --bench select`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use quarry_select::{
    Compression, CsvInput, CsvOutput, Engine, Event, FileHeaderInfo, Input, JsonInput, JsonType, Limits, MemorySource, Output,
    SelectRequest,
};

const ROWS: u64 = 200_000;

fn request(sql: &str, input: Input) -> SelectRequest {
    SelectRequest {
        expression: sql.into(),
        input,
        compression: Compression::None,
        output: Output::Csv(CsvOutput::default()),
        request_progress: false,
        scan_range: None,
    }
}

async fn run(engine: &Engine, req: SelectRequest, data: bytes::Bytes) -> usize {
    let mut events = engine.start(req, Arc::new(MemorySource(data))).await.expect("query starts");
    let mut n = 0;
    while let Some(ev) = events.next().await {
        if let Event::Records(b) = ev.expect("query runs") {
            n += b.len();
        }
    }
    n
}

fn scans(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let engine = Engine::default();
    let mut csv = Vec::new();
    quarry_datasets::lineitem::write_csv(42, 0..ROWS, true, &mut csv).unwrap();
    let mut jsonl = Vec::new();
    quarry_datasets::lineitem::write_jsonl(42, 0..ROWS, &mut jsonl).unwrap();
    let mut parquet = Vec::new();
    quarry_datasets::lineitem::write_parquet(42, 0..ROWS, 65_536, &mut parquet).unwrap();
    let csv_in = || {
        Input::Csv(CsvInput {
            file_header_info: FileHeaderInfo::Use,
            ..CsvInput::default()
        })
    };
    let cases: Vec<(&str, SelectRequest, bytes::Bytes)> = vec![
        (
            "csv count(*)",
            request("SELECT COUNT(*) FROM S3Object", csv_in()),
            csv.clone().into(),
        ),
        (
            "csv filter+project",
            request(
                "SELECT l_orderkey, l_extendedprice FROM S3Object WHERE CAST(l_quantity AS INT) = 7 AND l_shipmode = 'AIR'",
                csv_in(),
            ),
            csv.clone().into(),
        ),
        (
            "csv aggregate",
            request(
                "SELECT COUNT(*), SUM(CAST(l_extendedprice AS FLOAT)) FROM S3Object WHERE l_returnflag = 'R'",
                csv_in(),
            ),
            csv.clone().into(),
        ),
        (
            "jsonl filter+project",
            request(
                "SELECT s.l_orderkey, s.l_extendedprice FROM S3Object s WHERE s.l_quantity = 7 AND s.l_shipmode = 'AIR'",
                Input::Json(JsonInput { kind: JsonType::Lines }),
            ),
            jsonl.clone().into(),
        ),
        (
            "parquet filter+project",
            request(
                "SELECT l_orderkey, l_extendedprice FROM S3Object WHERE l_quantity = 7 AND l_shipmode = 'AIR'",
                Input::Parquet,
            ),
            parquet.clone().into(),
        ),
    ];
    // The same scans with one parse/decode task per query, for the parallel gain.
    let serial = Engine::new(Limits {
        scan_workers: 1,
        ..Limits::default()
    });
    let mut g = c.benchmark_group("select");
    g.sample_size(10);
    for (name, req, data) in cases {
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(name, |b| b.iter(|| rt.block_on(run(&engine, req.clone(), data.clone()))));
        if name.contains("filter+project") {
            g.bench_function(format!("{name} 1 worker"), |b| {
                b.iter(|| rt.block_on(run(&serial, req.clone(), data.clone())))
            });
        }
    }
    g.finish();

    // The raw readers, one thread each, decoding the filter+project query's columns.
    let full = quarry_datasets::lineitem::schema();
    let cols = ["l_orderkey", "l_extendedprice", "l_quantity", "l_shipmode"];
    let idx: Vec<usize> = cols.iter().map(|c| full.index_of(c).unwrap()).collect();
    let mut g = c.benchmark_group("raw");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(csv.len() as u64));
    // Select reads CSV values as text; so does this reader.
    let text = Arc::new(Schema::new(
        full.fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    g.bench_function("arrow-csv 4 columns", |b| {
        b.iter(|| {
            let reader = arrow::csv::ReaderBuilder::new(text.clone())
                .with_header(true)
                .with_projection(idx.clone())
                .build(std::io::Cursor::new(&csv))
                .unwrap();
            reader.map(|r| r.unwrap().num_rows()).sum::<usize>()
        })
    });
    g.throughput(Throughput::Bytes(jsonl.len() as u64));
    let json_schema = Arc::new(full.project(&idx).unwrap());
    g.bench_function("arrow-json 4 columns", |b| {
        b.iter(|| {
            let reader = arrow::json::ReaderBuilder::new(json_schema.clone())
                .build(std::io::Cursor::new(&jsonl))
                .unwrap();
            reader.map(|r| r.unwrap().num_rows()).sum::<usize>()
        })
    });
    g.throughput(Throughput::Bytes(parquet.len() as u64));
    let pq = bytes::Bytes::from(parquet.clone());
    g.bench_function("parquet 4 columns", |b| {
        b.iter(|| {
            let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(pq.clone()).unwrap();
            let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), idx.clone());
            let reader = builder.with_projection(mask).build().unwrap();
            reader.map(|r| r.unwrap().num_rows()).sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, scans);
criterion_main!(benches);
