//! JSON input: records are cut out of the byte stream (lines, or whole top-level values of
//! a DOCUMENT), parsed with `simd-json`, walked along the FROM path, and the paths the query
//! references are written as JSON text into Arrow string columns (a missing value is an
//! Arrow null, a JSON `null` the text `null`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::StreamExt;
use simd_json::BorrowedValue as Value;
use simd_json::prelude::*;

use crate::error::{Code, Result, SelectError};
use crate::json_path::{self, PathSplitter};
use crate::request::JsonType;
use crate::source::{ByteStream, io_error};
use crate::sql::{Dynamic, Resolved, Resolver, Seg};
use crate::task::async_stream;

/// AWS's limit on one JSON record (a line, or a value of a DOCUMENT stream).
pub const MAX_RECORD: usize = 1024 * 1024;
/// DOCUMENT input: the largest single top-level value held in memory.
pub const MAX_DOCUMENT: usize = 256 * 1024 * 1024;

/// The paths a query references, each an input column.
#[derive(Default)]
pub(crate) struct JsonColumns {
    pub paths: Vec<Vec<Seg>>,
    index: HashMap<Vec<Seg>, usize>,
    pub record: bool,
}

pub(crate) const RECORD_COLUMN: &str = "_record";

impl JsonColumns {
    pub fn schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = (0..self.paths.len())
            .map(|i| Field::new(format!("_j{i}"), DataType::Utf8, true))
            .collect();
        if self.record {
            fields.push(Field::new(RECORD_COLUMN, DataType::Utf8, true));
        }
        Arc::new(Schema::new(fields))
    }
}

impl Resolver for JsonColumns {
    fn dynamic(&self) -> Dynamic {
        Dynamic::Json
    }

    fn column(&mut self, path: &[Seg], _quoted: bool) -> Result<Resolved> {
        let out_name = match path.last() {
            Some(Seg::Key(k)) => k.clone(),
            _ => String::new(),
        };
        let n = self.paths.len();
        let i = *self.index.entry(path.to_vec()).or_insert(n);
        if i == n {
            self.paths.push(path.to_vec());
        }
        Ok(Resolved {
            column: format!("_j{i}"),
            out_name,
        })
    }

    fn record(&mut self) -> Result<Resolved> {
        self.record = true;
        Ok(Resolved {
            column: RECORD_COLUMN.into(),
            out_name: "_1".into(),
        })
    }

    fn all_columns(&mut self) -> Result<Vec<Resolved>> {
        Ok(vec![self.record()?])
    }
}

/// Cuts records out of the byte stream.
struct Splitter {
    stream: ByteStream,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    start: usize,
    /// Where the scan for the current record's end resumes.
    scan: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    eof: bool,
    kind: JsonType,
    /// DOCUMENT input streamed along the FROM path (see [`crate::json_path`]).
    path: Option<PathSplitter>,
}

impl Splitter {
    /// The next record's bytes (a copy simd-json may parse in place).
    async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        if let Some(p) = &mut self.path {
            loop {
                if let Some(r) = p.ready.pop_front() {
                    return Ok(Some(r));
                }
                if p.too_large() {
                    return Err(SelectError::new(
                        Code::OverMaxRecordSize,
                        format!("an element of the FROM path is longer than {} bytes", p.limit),
                    ));
                }
                match self.stream.next().await {
                    Some(Ok(chunk)) => p.feed(&chunk),
                    Some(Err(e)) => return Err(io_error(e)),
                    None => return Ok(None),
                }
            }
        }
        loop {
            if let Some(end) = self.find_end() {
                let rec = self.buf[self.start..end].to_vec();
                self.start = end;
                self.scan = end;
                if rec.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(rec));
            }
            let pending = self.buf.len() - self.start;
            let limit = if self.kind == JsonType::Lines { MAX_RECORD } else { MAX_DOCUMENT };
            if pending > limit {
                return Err(SelectError::new(
                    Code::OverMaxRecordSize,
                    format!("a JSON record is longer than {limit} bytes"),
                ));
            }
            if self.eof {
                let rest = &self.buf[self.start..];
                if rest.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                let rec = rest.to_vec();
                self.start = self.buf.len();
                self.scan = self.start;
                return Ok(Some(rec));
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => {
                    if self.start > 0 {
                        self.buf.drain(..self.start);
                        self.scan -= self.start;
                        self.start = 0;
                    }
                    self.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Err(io_error(e)),
                None => self.eof = true,
            }
        }
    }

    /// End (exclusive) of the record starting at `start`, if all of it is buffered.
    fn find_end(&mut self) -> Option<usize> {
        match self.kind {
            JsonType::Lines => {
                let at = memchr(b'\n', &self.buf[self.scan..]);
                match at {
                    Some(i) => Some(self.scan + i + 1),
                    None => {
                        self.scan = self.buf.len();
                        None
                    }
                }
            }
            JsonType::Document => {
                let mut i = self.scan;
                // Skip blanks between values.
                if self.depth == 0 && !self.in_string {
                    while i < self.buf.len() && self.buf[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    if i < self.buf.len() && !matches!(self.buf[i], b'{' | b'[') {
                        // A scalar at top level runs to the next blank.
                        let from = i;
                        while i < self.buf.len() && !self.buf[i].is_ascii_whitespace() {
                            i += 1;
                        }
                        if i < self.buf.len() {
                            return Some(i);
                        }
                        self.scan = from;
                        return None;
                    }
                }
                while i < self.buf.len() {
                    let c = self.buf[i];
                    i += 1;
                    if self.in_string {
                        if self.escaped {
                            self.escaped = false;
                        } else if c == b'\\' {
                            self.escaped = true;
                        } else if c == b'"' {
                            self.in_string = false;
                        }
                        continue;
                    }
                    match c {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                return Some(i);
                            }
                        }
                        _ => {}
                    }
                }
                self.scan = i;
                None
            }
        }
    }
}

fn memchr(b: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == b)
}

/// Apply the FROM path to a record: the values that become rows.
fn rows_of<'v, 'a>(v: &'v Value<'a>, path: &[Seg], out: &mut Vec<&'v Value<'a>>) {
    let Some((first, rest)) = path.split_first() else {
        out.push(v);
        return;
    };
    match first {
        Seg::Wildcard => match v.as_array() {
            Some(items) => {
                for item in items {
                    rows_of(item, rest, out);
                }
            }
            // `S3Object[*]` over a record that is not an array is the record itself.
            None => rows_of(v, rest, out),
        },
        Seg::Key(k) => {
            if let Some(x) = v.as_object().and_then(|o| o.get(k.as_str())) {
                rows_of(x, rest, out);
            }
        }
        Seg::Index(i) => {
            if let Some(x) = v.as_array().and_then(|a| a.get(*i)) {
                rows_of(x, rest, out);
            }
        }
    }
}

fn lookup<'v, 'a>(mut v: &'v Value<'a>, path: &[Seg]) -> Option<&'v Value<'a>> {
    for seg in path {
        v = match seg {
            Seg::Key(k) => {
                let o = v.as_object()?;
                // Unquoted names match case-insensitively when no exact key exists.
                match o.get(k.as_str()) {
                    Some(x) => x,
                    None => o.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, x)| x)?,
                }
            }
            Seg::Index(i) => v.as_array()?.get(*i)?,
            Seg::Wildcard => return None,
        };
    }
    Some(v)
}

pub(crate) fn batches(
    stream: ByteStream,
    kind: JsonType,
    from_path: Vec<Seg>,
    cols: &JsonColumns,
    schema: SchemaRef,
    batch_rows: usize,
) -> impl futures::Stream<Item = Result<RecordBatch>> + Send + use<> {
    let paths = cols.paths.clone();
    let want_record = cols.record;
    // A DOCUMENT read along `[*].key[*]` streams element by element; the rows are then
    // the elements themselves.
    let streamed = (kind == JsonType::Document).then(|| json_path::streamable(&from_path)).flatten();
    let from_path = if streamed.is_some() { Vec::new() } else { from_path };
    let mut splitter = Splitter {
        path: streamed.map(|keys| PathSplitter::new(keys, MAX_DOCUMENT)),
        stream,
        buf: Vec::new(),
        start: 0,
        scan: 0,
        depth: 0,
        in_string: false,
        escaped: false,
        eof: false,
        kind,
    };
    async_stream(move |tx| async move {
        let ncols = paths.len() + usize::from(want_record);
        let new_builders = || -> Vec<StringBuilder> {
            (0..ncols)
                .map(|_| StringBuilder::with_capacity(batch_rows, batch_rows * 16))
                .collect()
        };
        let mut builders = new_builders();
        let mut rows = 0usize;
        let mut text = String::new();
        loop {
            let rec = match splitter.next().await {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let done = rec.is_none();
            if let Some(mut rec) = rec {
                let value = match simd_json::to_borrowed_value(&mut rec) {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = tx
                            .send(Err(SelectError::new(
                                Code::JSONParsingError,
                                format!("a record is not valid JSON: {e}"),
                            )))
                            .await;
                        return;
                    }
                };
                let mut found: Vec<&Value<'_>> = Vec::new();
                rows_of(&value, &from_path, &mut found);
                for row in &found {
                    for (b, p) in builders.iter_mut().zip(&paths) {
                        match lookup(row, p) {
                            Some(v) => {
                                text.clear();
                                write_json(&mut text, v);
                                b.append_value(&text);
                            }
                            None => b.append_null(),
                        }
                    }
                    if want_record {
                        text.clear();
                        write_json(&mut text, row);
                        builders[ncols - 1].append_value(&text);
                    }
                    rows += 1;
                }
            }
            if rows >= batch_rows || (done && rows > 0) {
                let columns: Vec<ArrayRef> = builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
                let batch =
                    RecordBatch::try_new_with_options(schema.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(rows)))
                        .map_err(|e| SelectError::new(Code::InternalError, e.to_string()));
                rows = 0;
                builders = new_builders();
                if tx.send(batch).await.is_err() {
                    return;
                }
            }
            if done {
                return;
            }
        }
    })
}

/// Compact JSON text of `v`.
fn write_json(out: &mut String, v: &Value<'_>) {
    match v {
        Value::String(s) => write_json_string(out, s),
        Value::Static(_) => {
            use std::fmt::Write;
            let _ = write!(out, "{v}");
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, x);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_json(out, x);
            }
            out.push('}');
        }
    }
}

pub(crate) fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
