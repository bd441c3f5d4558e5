//! Result records as CSV or JSON bytes, written straight from Arrow arrays.

use std::fmt::Write as _;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Code, Result, SelectError};
use crate::json::write_json_string;
use crate::request::{CsvOutput, Output, QuoteFields};
use crate::sql::{OutColumn, OutKind};
use crate::udf::unquote_json;

pub(crate) struct Writer {
    format: Output,
    columns: Vec<OutColumn>,
    /// Reused per value.
    cell: String,
}

impl Writer {
    pub fn new(format: Output, columns: Vec<OutColumn>) -> Self {
        Self {
            format,
            columns,
            cell: String::new(),
        }
    }

    /// Append rows of `batch` from `from` on to `out` until it holds `limit` bytes; returns
    /// the first row not written.
    pub fn write(&mut self, batch: &RecordBatch, from: usize, out: &mut String, limit: usize) -> Result<usize> {
        let arrays: Vec<&ArrayRef> = batch.columns().iter().collect();
        if arrays.len() != self.columns.len() {
            return Err(SelectError::new(
                Code::InternalError,
                format!("query produced {} columns, expected {}", arrays.len(), self.columns.len()),
            ));
        }
        let opts = FormatOptions::default();
        let formatters = arrays
            .iter()
            .map(|a| ArrayFormatter::try_new(a.as_ref(), &opts))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SelectError::new(Code::InternalError, e.to_string()))?;
        for row in from..batch.num_rows() {
            if out.len() >= limit {
                return Ok(row);
            }
            match &self.format {
                Output::Csv(csv) => {
                    let csv = csv.clone();
                    self.csv_row(&arrays, &formatters, row, &csv, out);
                }
                Output::Json(json) => {
                    let delim = json.record_delimiter.clone();
                    self.json_row(&arrays, &formatters, row, out);
                    out.push_str(&delim);
                }
            }
        }
        Ok(batch.num_rows())
    }

    fn csv_row(&mut self, arrays: &[&ArrayRef], fmts: &[ArrayFormatter<'_>], row: usize, csv: &CsvOutput, out: &mut String) {
        let mut first = true;
        for (i, a) in arrays.iter().enumerate() {
            let kind = self.columns[i].kind;
            if kind == OutKind::JsonRecord && a.is_valid(row) {
                // `SELECT *` on JSON: the record's values become the CSV fields.
                let text = a.as_string::<i32>().value(row).to_string();
                let mut bytes = text.into_bytes();
                if let Ok(v) = simd_json::to_borrowed_value(&mut bytes)
                    && let simd_json::BorrowedValue::Object(o) = &v
                {
                    for (_, x) in o.iter() {
                        if !first {
                            out.push_str(&csv.field_delimiter);
                        }
                        first = false;
                        self.cell.clear();
                        json_scalar_text(&mut self.cell, x);
                        push_csv_field(out, &self.cell, csv, false);
                    }
                    continue;
                }
            }
            if !first {
                out.push_str(&csv.field_delimiter);
            }
            first = false;
            if a.is_null(row) {
                if csv.quote_fields == QuoteFields::Always {
                    push_csv_field(out, "", csv, false);
                }
                continue;
            }
            self.cell.clear();
            match kind {
                OutKind::JsonValue | OutKind::JsonRecord => {
                    let t = a.as_string::<i32>().value(row);
                    if t.starts_with('"') {
                        self.cell.push_str(&unquote_json(t).unwrap_or_else(|| t.to_string()));
                    } else if t != "null" {
                        self.cell.push_str(t);
                    }
                }
                OutKind::Value => value_text(&mut self.cell, a, &fmts[i], row),
            }
            push_csv_field(out, &self.cell, csv, false);
        }
        out.push_str(&csv.record_delimiter);
    }

    fn json_row(&mut self, arrays: &[&ArrayRef], fmts: &[ArrayFormatter<'_>], row: usize, out: &mut String) {
        if arrays.len() == 1 && self.columns[0].kind == OutKind::JsonRecord {
            let a = arrays[0];
            if a.is_valid(row) {
                out.push_str(a.as_string::<i32>().value(row));
            } else {
                out.push_str("{}");
            }
            return;
        }
        out.push('{');
        let mut first = true;
        for (i, a) in arrays.iter().enumerate() {
            let col = &self.columns[i];
            // A missing JSON value has no key in the output.
            if a.is_null(row) && col.kind != OutKind::Value {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            write_json_string(out, &col.name);
            out.push(':');
            if a.is_null(row) {
                out.push_str("null");
                continue;
            }
            match col.kind {
                OutKind::JsonValue | OutKind::JsonRecord => out.push_str(a.as_string::<i32>().value(row)),
                OutKind::Value => json_value(out, &mut self.cell, a, &fmts[i], row),
            }
        }
        out.push('}');
    }
}

fn json_scalar_text(out: &mut String, v: &simd_json::BorrowedValue<'_>) {
    match v {
        simd_json::BorrowedValue::String(s) => out.push_str(s),
        simd_json::BorrowedValue::Static(simd_json::StaticNode::Null) => {}
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

fn push_csv_field(out: &mut String, text: &str, csv: &CsvOutput, _: bool) {
    let needs = csv.quote_fields == QuoteFields::Always
        || text.contains(csv.quote)
        || text.contains(csv.field_delimiter.as_str())
        || text.contains(csv.record_delimiter.as_str())
        || text.contains(['\n', '\r']);
    if !needs {
        out.push_str(text);
        return;
    }
    out.push(csv.quote);
    for c in text.chars() {
        if c == csv.quote {
            out.push(csv.quote_escape);
        }
        out.push(c);
    }
    out.push(csv.quote);
}

/// The text of one non-null value.
fn value_text(out: &mut String, a: &ArrayRef, fmt: &ArrayFormatter<'_>, row: usize) {
    match a.data_type() {
        DataType::Utf8 => out.push_str(a.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => out.push_str(a.as_string::<i64>().value(row)),
        DataType::Utf8View => out.push_str(a.as_string_view().value(row)),
        DataType::Float64 => push_float(out, a.as_primitive::<arrow::datatypes::Float64Type>().value(row)),
        DataType::Float32 => push_float(out, f64::from(a.as_primitive::<arrow::datatypes::Float32Type>().value(row))),
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => a
                    .as_primitive::<arrow::datatypes::TimestampSecondType>()
                    .value(row)
                    .saturating_mul(1_000_000_000),
                TimeUnit::Millisecond => a
                    .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                    .value(row)
                    .saturating_mul(1_000_000),
                TimeUnit::Microsecond => a
                    .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                    .value(row)
                    .saturating_mul(1_000),
                TimeUnit::Nanosecond => a.as_primitive::<arrow::datatypes::TimestampNanosecondType>().value(row),
            };
            push_timestamp(out, v);
        }
        _ => {
            let _ = write!(out, "{}", fmt.value(row));
        }
    }
}

/// Floats print in their shortest form; whole numbers without a fraction (`3`, not `3.0`).
fn push_float(out: &mut String, v: f64) {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e17 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Timestamps as ISO 8601 in UTC, with as many fraction digits as they need.
fn push_timestamp(out: &mut String, nanos: i64) {
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(nanos);
    let frac = t.timestamp_subsec_nanos();
    if frac == 0 {
        let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%SZ"));
    } else {
        let digits = format!("{frac:09}");
        let _ = write!(out, "{}.{}Z", t.format("%Y-%m-%dT%H:%M:%S"), digits.trim_end_matches('0'));
    }
}

fn json_value(out: &mut String, cell: &mut String, a: &ArrayRef, fmt: &ArrayFormatter<'_>, row: usize) {
    match a.data_type() {
        DataType::Boolean => out.push_str(if a.as_boolean().value(row) { "true" } else { "false" }),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => {
            let _ = write!(out, "{}", fmt.value(row));
        }
        DataType::Float64 | DataType::Float32 => {
            cell.clear();
            value_text(cell, a, fmt, row);
            if cell.parse::<f64>().is_ok_and(f64::is_finite) {
                out.push_str(cell);
            } else {
                write_json_string(out, cell);
            }
        }
        _ => {
            cell.clear();
            value_text(cell, a, fmt, row);
            write_json_string(out, cell);
        }
    }
}
