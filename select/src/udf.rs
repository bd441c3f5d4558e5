//! AWS S3 Select semantics DataFusion does not have, as scalar functions.
//!
//! - `quarry_csv_num`, `quarry_json_num`, `quarry_json_str`: the implicit readings of untyped
//!   CSV and JSON values (see [`crate::sql`]). A value that is not a number reads as NULL, so
//!   `WHERE s.price > 10` skips records whose price is not numeric, as MinIO does (AWS is
//!   loose here).
//! - `quarry_to_timestamp`: AWS's timestamp literals (`2007T`, `2007-02-23T12:14:33.079-08:00`).
//! - `quarry_to_bool`, `quarry_date_add`, `quarry_date_diff`, `quarry_to_string`, `quarry_utcnow`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder};
use arrow::datatypes::{DataType, TimeUnit, TimestampNanosecondType};
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Timelike, Utc};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;

use crate::error::{Code, SelectError};

pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// Register every function on `ctx`.
pub(crate) fn register(ctx: &SessionContext) {
    let utf8 = || vec![DataType::Utf8];
    let f = |name: &str, inputs: Vec<DataType>, out: DataType, vol: Volatility, fun: fn(&[ArrayRef]) -> DfResult<ArrayRef>| -> ScalarUDF {
        create_udf(
            name,
            inputs,
            out,
            vol,
            Arc::new(move |args: &[ColumnarValue]| {
                let arrays = ColumnarValue::values_to_arrays(args)?;
                fun(&arrays).map(ColumnarValue::Array)
            }),
        )
    };
    let imm = Volatility::Immutable;
    for udf in [
        f("quarry_csv_num", utf8(), DataType::Float64, imm, csv_num),
        f("quarry_json_num", utf8(), DataType::Float64, imm, json_num),
        f("quarry_json_str", utf8(), DataType::Utf8, imm, json_str),
        f("quarry_to_timestamp", utf8(), timestamp_type(), imm, to_timestamp),
        f("quarry_to_bool", utf8(), DataType::Boolean, imm, to_bool),
        f(
            "quarry_date_add",
            vec![DataType::Utf8, DataType::Int64, timestamp_type()],
            timestamp_type(),
            imm,
            date_add,
        ),
        f(
            "quarry_date_diff",
            vec![DataType::Utf8, timestamp_type(), timestamp_type()],
            DataType::Int64,
            imm,
            date_diff,
        ),
        f(
            "quarry_to_string",
            vec![timestamp_type(), DataType::Utf8],
            DataType::Utf8,
            imm,
            to_string,
        ),
    ] {
        ctx.register_udf(udf);
    }
    ctx.register_udf(create_udf(
        "quarry_utcnow",
        vec![],
        timestamp_type(),
        Volatility::Stable,
        Arc::new(|_args: &[ColumnarValue]| {
            let now = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
            Ok(ColumnarValue::Scalar(datafusion::scalar::ScalarValue::TimestampNanosecond(
                Some(now),
                Some("UTC".into()),
            )))
        }),
    ));
}

fn csv_num(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let s = args[0].as_string::<i32>();
    let mut out = Float64Builder::with_capacity(s.len());
    for v in s.iter() {
        out.append_option(v.and_then(parse_number));
    }
    Ok(Arc::new(out.finish()))
}

/// A CSV field as a number: surrounding blanks allowed, nothing else.
pub(crate) fn parse_number(v: &str) -> Option<f64> {
    let t = v.trim();
    if t.is_empty() {
        return None;
    }
    let b = t.as_bytes();
    // Rust also parses "inf", "nan": those are not numbers in a CSV field.
    if !b
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    t.parse::<f64>().ok()
}

fn json_num(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let s = args[0].as_string::<i32>();
    let mut out = Float64Builder::with_capacity(s.len());
    for v in s.iter() {
        out.append_option(
            v.filter(|t| t.starts_with(|c: char| c == '-' || c.is_ascii_digit()))
                .and_then(|t| t.parse().ok()),
        );
    }
    Ok(Arc::new(out.finish()))
}

fn json_str(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let s = args[0].as_string::<i32>();
    let mut out = StringBuilder::with_capacity(s.len(), s.value_data().len());
    for v in s.iter() {
        match v {
            None => out.append_null(),
            Some(t) if t.starts_with('"') => match unquote_json(t) {
                Some(u) => out.append_value(u),
                None => out.append_value(t),
            },
            Some("null") => out.append_null(),
            Some(t) => out.append_value(t),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// The string a JSON string literal denotes.
pub(crate) fn unquote_json(t: &str) -> Option<String> {
    if !t.contains('\\') {
        return Some(t.get(1..t.len().saturating_sub(1))?.to_string());
    }
    let mut bytes = t.as_bytes().to_vec();
    let v: simd_json::BorrowedValue<'_> = simd_json::to_borrowed_value(&mut bytes).ok()?;
    match v {
        simd_json::BorrowedValue::String(s) => Some(s.into_owned()),
        _ => None,
    }
}

fn to_bool(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let s = args[0].as_string::<i32>();
    let mut out = BooleanBuilder::with_capacity(s.len());
    for v in s.iter() {
        match v.map(str::trim) {
            None => out.append_null(),
            Some(t) if t.eq_ignore_ascii_case("true") => out.append_value(true),
            Some(t) if t.eq_ignore_ascii_case("false") => out.append_value(false),
            Some(t) => return Err(SelectError::tagged(Code::CastFailed, format!("cannot cast '{t}' to BOOL"))),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn to_timestamp(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let s = args[0].as_string::<i32>();
    let mut out = TimestampNanosecondBuilder::with_capacity(s.len()).with_timezone("UTC");
    for v in s.iter() {
        match v {
            None => out.append_null(),
            Some(t) => match parse_timestamp(t.trim()) {
                Some(ts) => out.append_value(ts.timestamp_nanos_opt().unwrap_or(i64::MAX)),
                None => return Err(SelectError::tagged(Code::CastFailed, format!("cannot read '{t}' as a TIMESTAMP"))),
            },
        }
    }
    Ok(Arc::new(out.finish()))
}

/// AWS's timestamp text: `YYYY[-MM[-DD]]T`, or a date with `Thh:mm[:ss[.fff]]` and an
/// offset (`Z` or `±hh:mm`).
pub(crate) fn parse_timestamp(t: &str) -> Option<DateTime<FixedOffset>> {
    let utc = FixedOffset::east_opt(0)?;
    let date_only = |d: NaiveDate| utc.from_local_datetime(&d.and_hms_opt(0, 0, 0)?).single();
    if let Some(d) = t.strip_suffix('T').or((t.len() == 10).then_some(t)) {
        let parts: Vec<&str> = d.split('-').collect();
        let num = |s: &str| s.parse::<u32>().ok();
        return match parts.as_slice() {
            [y] if y.len() == 4 => date_only(NaiveDate::from_ymd_opt(y.parse().ok()?, 1, 1)?),
            [y, m] if y.len() == 4 && m.len() == 2 => date_only(NaiveDate::from_ymd_opt(y.parse().ok()?, num(m)?, 1)?),
            [y, m, dd] if y.len() == 4 && m.len() == 2 && dd.len() == 2 => {
                date_only(NaiveDate::from_ymd_opt(y.parse().ok()?, num(m)?, num(dd)?)?)
            }
            _ => None,
        };
    }
    if let Ok(ts) = DateTime::parse_from_rfc3339(t) {
        return Some(ts);
    }
    // Minutes without seconds: 2007-02-23T12:14Z.
    for fmt in ["%Y-%m-%dT%H:%M%#z", "%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%MZ"] {
        if let Ok(ts) = DateTime::parse_from_str(t, fmt) {
            return Some(ts);
        }
    }
    if let Some(base) = t.strip_suffix('Z') {
        for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(n) = chrono::NaiveDateTime::parse_from_str(base, fmt) {
                return utc.from_local_datetime(&n).single();
            }
        }
    }
    None
}

fn timestamps(a: &ArrayRef) -> &arrow::array::PrimitiveArray<TimestampNanosecondType> {
    a.as_primitive::<TimestampNanosecondType>()
}

fn nanos_to_utc(n: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_nanos(n)
}

fn date_add(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let part = args[0].as_string::<i32>();
    let n = args[1].as_primitive::<arrow::datatypes::Int64Type>();
    let ts = timestamps(&args[2]);
    let mut out = TimestampNanosecondBuilder::with_capacity(ts.len()).with_timezone("UTC");
    for i in 0..ts.len() {
        if part.is_null(i) || n.is_null(i) || ts.is_null(i) {
            out.append_null();
            continue;
        }
        let t = nanos_to_utc(ts.value(i));
        let k = n.value(i);
        let r = match part.value(i) {
            "year" => add_months(t, k.checked_mul(12)),
            "month" => add_months(t, Some(k)),
            "day" => Duration::try_days(k).and_then(|d| t.checked_add_signed(d)),
            "hour" => Duration::try_hours(k).and_then(|d| t.checked_add_signed(d)),
            "minute" => Duration::try_minutes(k).and_then(|d| t.checked_add_signed(d)),
            "second" => Duration::try_seconds(k).and_then(|d| t.checked_add_signed(d)),
            other => {
                return Err(SelectError::tagged(
                    Code::InvalidDataType,
                    format!("DATE_ADD: unknown date part `{other}` (year, month, day, hour, minute, second)"),
                ));
            }
        };
        match r.and_then(|r| r.timestamp_nanos_opt()) {
            Some(v) => out.append_value(v),
            None => return Err(SelectError::tagged(Code::InvalidDataType, "DATE_ADD: result out of range")),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn add_months(t: DateTime<Utc>, months: Option<i64>) -> Option<DateTime<Utc>> {
    let m = months?;
    let m32 = i32::try_from(m.unsigned_abs()).ok()?;
    if m >= 0 {
        t.checked_add_months(chrono::Months::new(m32.unsigned_abs()))
    } else {
        t.checked_sub_months(chrono::Months::new(m32.unsigned_abs()))
    }
}

fn date_diff(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let part = args[0].as_string::<i32>();
    let a = timestamps(&args[1]);
    let b = timestamps(&args[2]);
    let mut out = Int64Builder::with_capacity(a.len());
    for i in 0..a.len() {
        if part.is_null(i) || a.is_null(i) || b.is_null(i) {
            out.append_null();
            continue;
        }
        let (x, y) = (nanos_to_utc(a.value(i)), nanos_to_utc(b.value(i)));
        let months = || {
            let m = i64::from(y.year() - x.year()) * 12 + i64::from(y.month()) - i64::from(x.month());
            // A month is complete once the day and time of day are reached again.
            let later =
                (y.day(), y.num_seconds_from_midnight(), y.nanosecond()) >= (x.day(), x.num_seconds_from_midnight(), x.nanosecond());
            let earlier =
                (y.day(), y.num_seconds_from_midnight(), y.nanosecond()) <= (x.day(), x.num_seconds_from_midnight(), x.nanosecond());
            if m > 0 && !later {
                m - 1
            } else if m < 0 && !earlier {
                m + 1
            } else {
                m
            }
        };
        let d = y - x;
        let v = match part.value(i) {
            "year" => months() / 12,
            "month" => months(),
            "day" => d.num_days(),
            "hour" => d.num_hours(),
            "minute" => d.num_minutes(),
            "second" => d.num_seconds(),
            other => {
                return Err(SelectError::tagged(
                    Code::InvalidDataType,
                    format!("DATE_DIFF: unknown date part `{other}` (year, month, day, hour, minute, second)"),
                ));
            }
        };
        out.append_value(v);
    }
    Ok(Arc::new(out.finish()))
}

fn to_string(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let ts = timestamps(&args[0]);
    let fmt = args[1].as_string::<i32>();
    let mut out = StringBuilder::with_capacity(ts.len(), ts.len() * 24);
    for i in 0..ts.len() {
        if ts.is_null(i) || fmt.is_null(i) {
            out.append_null();
            continue;
        }
        let t = nanos_to_utc(ts.value(i));
        out.append_value(format_timestamp(&t, fmt.value(i)).map_err(|m| SelectError::tagged(Code::InvalidDataType, m))?);
    }
    Ok(Arc::new(out.finish()))
}

/// AWS's TO_STRING patterns (Java-style letters): y, M, d, a, h, H, m, s, S, n, X, x, '...'.
pub(crate) fn format_timestamp(t: &DateTime<Utc>, pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                out.push(chars[j]);
                j += 1;
            }
            if j == i + 1 && j < chars.len() {
                out.push('\'');
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        i += n;
        let pad = |v: i64, w: usize| format!("{v:0w$}");
        match c {
            'y' => {
                if n == 2 {
                    out.push_str(&pad(i64::from(t.year()).rem_euclid(100), 2));
                } else {
                    out.push_str(&pad(i64::from(t.year()), n));
                }
            }
            'M' => match n {
                1 | 2 => out.push_str(&pad(i64::from(t.month()), n)),
                3 => out.push_str(&t.format("%b").to_string()),
                4 => out.push_str(&t.format("%B").to_string()),
                _ => out.push_str(&t.format("%B").to_string()[..1]),
            },
            'd' => out.push_str(&pad(i64::from(t.day()), n)),
            'a' => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
            'h' => out.push_str(&pad(i64::from((t.hour() + 11) % 12 + 1), n)),
            'H' => out.push_str(&pad(i64::from(t.hour()), n)),
            'm' => out.push_str(&pad(i64::from(t.minute()), n)),
            's' => out.push_str(&pad(i64::from(t.second()), n)),
            'S' => {
                let frac = format!("{:09}", t.nanosecond());
                let mut s: String = frac.chars().take(n.min(9)).collect();
                while s.len() < n {
                    s.push('0');
                }
                out.push_str(&s);
            }
            'n' => out.push_str(&t.nanosecond().to_string()),
            'X' => out.push('Z'),
            'x' => out.push_str(match n {
                1 => "+00",
                2 | 4 => "+0000",
                _ => "+00:00",
            }),
            other => return Err(format!("TO_STRING: unsupported pattern letter `{other}`")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_timestamp_forms() {
        for (t, want) in [
            ("2007T", "2007-01-01T00:00:00+00:00"),
            ("2007-02T", "2007-02-01T00:00:00+00:00"),
            ("2007-02-23T", "2007-02-23T00:00:00+00:00"),
            ("2007-02-23T12:14Z", "2007-02-23T12:14:00+00:00"),
            ("2007-02-23T12:14:33Z", "2007-02-23T12:14:33+00:00"),
            ("2007-02-23T12:14:33.079-08:00", "2007-02-23T12:14:33.079-08:00"),
            ("2007-02-23T12:14+01:00", "2007-02-23T12:14:00+01:00"),
        ] {
            assert_eq!(parse_timestamp(t).map(|d| d.to_rfc3339()).as_deref(), Some(want), "{t}");
        }
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("2007-13T").is_none());
    }

    #[test]
    fn to_string_patterns() {
        let t = parse_timestamp("1969-07-20T20:18:09.5Z").unwrap().with_timezone(&Utc);
        assert_eq!(format_timestamp(&t, "MMMM d, y").unwrap(), "July 20, 1969");
        assert_eq!(format_timestamp(&t, "MMM d, yyyy").unwrap(), "Jul 20, 1969");
        assert_eq!(format_timestamp(&t, "M/d/y h:m a").unwrap(), "7/20/1969 8:18 PM");
        assert_eq!(
            format_timestamp(&t, "yyyy-MM-dd'T'HH:mm:ss.SSSX").unwrap(),
            "1969-07-20T20:18:09.500Z"
        );
        assert!(format_timestamp(&t, "q").is_err());
    }

    #[test]
    fn csv_numbers() {
        assert_eq!(parse_number(" 42 "), Some(42.0));
        assert_eq!(parse_number("-1.5e3"), Some(-1500.0));
        assert_eq!(parse_number("nan"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("12abc"), None);
    }
}
