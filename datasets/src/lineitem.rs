//! A TPC-H-like `lineitem` table as CSV (with header), JSON lines and Parquet.
//!
//! Schema (CSV and JSON carry the same values as text/numbers; Parquet types in brackets):
//! `l_orderkey` [Int64], `l_partkey` [Int64], `l_suppkey` [Int64], `l_linenumber` [Int32],
//! `l_quantity` [Int64, 1-50], `l_extendedprice` [Float64, 2 decimals], `l_discount`
//! [Float64, 0.00-0.10], `l_tax` [Float64, 0.00-0.08], `l_returnflag` [Utf8, A/N/R],
//! `l_shipdate` [Date32; `YYYY-MM-DD` in text, 1992-01-01..1998-12-01], `l_shipmode`
//! [Utf8], `l_comment` [Utf8, contains a comma and so is quoted in CSV].

use crate::rng::Rng;
use arrow_array::{ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use std::io::Write;
use std::sync::Arc;

/// Rows per TPC-H scale factor.
pub const ROWS_PER_SCALE: u64 = 6_000_000;

const FLAGS: [&str; 3] = ["A", "N", "R"];
const MODES: [&str; 7] = ["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"];
const WORDS: [&str; 12] = [
    "quick", "regular", "final", "ironic", "bold", "pending", "express", "silent", "furious", "careful", "even", "special",
];
/// 1992-01-01 as days since 1970-01-01.
const EPOCH_1992: i32 = 8035;
const SHIP_DAYS: u64 = 2526;

/// One row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub orderkey: i64,
    pub partkey: i64,
    pub suppkey: i64,
    pub linenumber: i32,
    pub quantity: i64,
    pub extendedprice: f64,
    pub discount: f64,
    pub tax: f64,
    pub returnflag: &'static str,
    /// Days since 1970-01-01.
    pub shipdate: i32,
    pub shipmode: &'static str,
    pub comment: String,
}

/// Row `i` of the table for `seed` (rows are independent, so any range can be generated).
pub fn row(seed: u64, i: u64) -> Row {
    let mut r = Rng::stream(seed, i);
    let quantity = r.range(1, 50) as i64;
    let cents = r.range(90_000, 10_500_000);
    Row {
        orderkey: (i / 4 + 1) as i64,
        partkey: r.range(1, 200_000) as i64,
        suppkey: r.range(1, 10_000) as i64,
        linenumber: (i % 4 + 1) as i32,
        quantity,
        extendedprice: cents as f64 / 100.0,
        discount: r.range(0, 10) as f64 / 100.0,
        tax: r.range(0, 8) as f64 / 100.0,
        returnflag: r.pick(&FLAGS),
        shipdate: EPOCH_1992 + r.range(0, SHIP_DAYS) as i32,
        shipmode: r.pick(&MODES),
        comment: format!("{} {}, {}", r.pick(&WORDS), r.pick(&WORDS), r.range(0, 999)),
    }
}

/// `YYYY-MM-DD` of days since 1970-01-01 (proleptic Gregorian).
pub fn date_string(days: i32) -> String {
    let d = time::Date::from_julian_day(2_440_588 + days).expect("dates in range");
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The column names, in order.
pub const COLUMNS: [&str; 12] = [
    "l_orderkey",
    "l_partkey",
    "l_suppkey",
    "l_linenumber",
    "l_quantity",
    "l_extendedprice",
    "l_discount",
    "l_tax",
    "l_returnflag",
    "l_shipdate",
    "l_shipmode",
    "l_comment",
];

/// Write rows `range` as CSV; `header` adds the column-name line.
pub fn write_csv(seed: u64, range: std::ops::Range<u64>, header: bool, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    if header {
        writeln!(w, "{}", COLUMNS.join(","))?;
    }
    for i in range {
        let r = row(seed, i);
        writeln!(
            w,
            "{},{},{},{},{},{:.2},{:.2},{:.2},{},{},{},\"{}\"",
            r.orderkey,
            r.partkey,
            r.suppkey,
            r.linenumber,
            r.quantity,
            r.extendedprice,
            r.discount,
            r.tax,
            r.returnflag,
            date_string(r.shipdate),
            r.shipmode,
            r.comment
        )?;
    }
    w.flush()
}

/// Write rows `range` as JSON lines (one object per line, keys as in [`COLUMNS`]).
pub fn write_jsonl(seed: u64, range: std::ops::Range<u64>, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    for i in range {
        let r = row(seed, i);
        let v = serde_json::json!({
            "l_orderkey": r.orderkey, "l_partkey": r.partkey, "l_suppkey": r.suppkey, "l_linenumber": r.linenumber,
            "l_quantity": r.quantity, "l_extendedprice": r.extendedprice, "l_discount": r.discount, "l_tax": r.tax,
            "l_returnflag": r.returnflag, "l_shipdate": date_string(r.shipdate), "l_shipmode": r.shipmode, "l_comment": r.comment,
        });
        serde_json::to_writer(&mut w, &v)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// The Arrow schema of the Parquet form.
pub fn schema() -> Arc<Schema> {
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    Arc::new(Schema::new(vec![
        f("l_orderkey", DataType::Int64),
        f("l_partkey", DataType::Int64),
        f("l_suppkey", DataType::Int64),
        f("l_linenumber", DataType::Int32),
        f("l_quantity", DataType::Int64),
        f("l_extendedprice", DataType::Float64),
        f("l_discount", DataType::Float64),
        f("l_tax", DataType::Float64),
        f("l_returnflag", DataType::Utf8),
        f("l_shipdate", DataType::Date32),
        f("l_shipmode", DataType::Utf8),
        f("l_comment", DataType::Utf8),
    ]))
}

/// Rows `range` as one Arrow batch.
pub fn batch(seed: u64, range: std::ops::Range<u64>) -> RecordBatch {
    let rows: Vec<Row> = range.map(|i| row(seed, i)).collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.orderkey))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.partkey))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.suppkey))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.linenumber))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.quantity))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.extendedprice))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.discount))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.tax))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.returnflag))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.shipdate))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.shipmode))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.comment.as_str()))),
    ];
    RecordBatch::try_new(schema(), cols).expect("columns match the schema")
}

/// Write rows `range` as Parquet: Snappy, one row group per `row_group_rows` rows, with
/// column and page statistics (what engines prune with).
pub fn write_parquet(seed: u64, range: std::ops::Range<u64>, row_group_rows: u64, out: impl Write + Send) -> parquet::errors::Result<()> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group_rows as usize))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by("quarry-datasets".into())
        .build();
    let mut w = ArrowWriter::try_new(out, schema(), Some(props))?;
    let mut at = range.start;
    while at < range.end {
        // Batches of at most 64k rows keep memory flat; the writer cuts row groups itself.
        let end = (at + 65_536).min(range.end);
        w.write(&batch(seed, at..end))?;
        at = end;
    }
    w.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_string(EPOCH_1992), "1992-01-01");
        assert_eq!(date_string(EPOCH_1992 + SHIP_DAYS as i32), "1998-12-01");
    }

    #[test]
    fn rows_are_independent_of_range() {
        let mut all = Vec::new();
        write_csv(9, 0..100, false, &mut all).unwrap();
        let mut tail = Vec::new();
        write_csv(9, 50..100, false, &mut tail).unwrap();
        assert!(all.ends_with(&tail));
    }
}
