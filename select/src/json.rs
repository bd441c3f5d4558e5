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

use crate::blocks::cut_blocks;
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

/// Cuts the top-level values of a DOCUMENT out of the byte stream (LINES input goes
/// through [`lines_in_parallel`]).
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
            let limit = MAX_DOCUMENT;
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

/// Turns JSON records into rows of the referenced paths' JSON text.
struct RowBuilder {
    paths: Vec<Vec<Seg>>,
    want_record: bool,
    from_path: Vec<Seg>,
    builders: Vec<StringBuilder>,
    rows: usize,
    text: String,
    buffers: simd_json::Buffers,
}

impl RowBuilder {
    fn new(paths: Vec<Vec<Seg>>, want_record: bool, from_path: Vec<Seg>) -> Self {
        let mut b = Self {
            paths,
            want_record,
            from_path,
            builders: Vec::new(),
            rows: 0,
            text: String::new(),
            buffers: simd_json::Buffers::new(4096),
        };
        b.reset();
        b
    }

    fn reset(&mut self) {
        let ncols = self.paths.len() + usize::from(self.want_record);
        self.builders = (0..ncols).map(|_| StringBuilder::with_capacity(1024, 16 * 1024)).collect();
        self.rows = 0;
    }

    /// Parse one record (in place) and add the rows its FROM path yields.
    fn add(&mut self, rec: &mut [u8]) -> Result<()> {
        let value = simd_json::value::borrowed::to_value_with_buffers(rec, &mut self.buffers)
            .map_err(|e| SelectError::new(Code::JSONParsingError, format!("a record is not valid JSON: {e}")))?;
        let mut found: Vec<&Value<'_>> = Vec::new();
        rows_of(&value, &self.from_path, &mut found);
        let text = &mut self.text;
        for row in &found {
            for (b, p) in self.builders.iter_mut().zip(&self.paths) {
                match lookup(row, p) {
                    Some(v) => {
                        text.clear();
                        write_json(text, v);
                        b.append_value(&*text);
                    }
                    None => b.append_null(),
                }
            }
            if self.want_record {
                text.clear();
                write_json(text, row);
                self.builders.last_mut().expect("the record column").append_value(&*text);
            }
            self.rows += 1;
        }
        Ok(())
    }

    /// The rows added since the last batch, as a batch (`None` when there are none).
    fn batch(&mut self, schema: &SchemaRef) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(self.rows)))
            .map_err(|e| SelectError::new(Code::InternalError, e.to_string()))?;
        self.reset();
        Ok(Some(batch))
    }
}

/// JSON LINES parsed in blocks cut after newlines, on up to `workers` tasks at once. A
/// newline never occurs inside a JSON string, so a cut never splits a record.
fn lines_in_parallel(
    stream: ByteStream,
    paths: Vec<Vec<Seg>>,
    want_record: bool,
    from_path: Vec<Seg>,
    schema: SchemaRef,
    workers: usize,
) -> impl futures::Stream<Item = Result<RecordBatch>> + Send + use<> {
    let job = Arc::new((paths, want_record, from_path, schema));
    async_stream(move |tx| async move {
        let mut parsed = cut_blocks(bytes::Bytes::new(), stream, b'\n', 0, MAX_RECORD)
            .map(move |block| {
                let job = job.clone();
                async move {
                    let block = block?;
                    tokio::task::spawn_blocking(move || {
                        let (paths, want_record, from_path, schema) = &*job;
                        let mut rows = RowBuilder::new(paths.clone(), *want_record, from_path.clone());
                        let mut rec = Vec::new();
                        let mut start = 0;
                        let data = &block.data[..];
                        while start < data.len() {
                            let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i + 1);
                            let line = &data[start..end];
                            if line.len() > MAX_RECORD {
                                return Err(SelectError::new(
                                    Code::OverMaxRecordSize,
                                    format!(
                                        "a JSON record is longer than {MAX_RECORD} bytes (at byte {})",
                                        block.offset + start as u64
                                    ),
                                ));
                            }
                            if !line.iter().all(u8::is_ascii_whitespace) {
                                rec.clear();
                                rec.extend_from_slice(line);
                                rows.add(&mut rec)?;
                            }
                            start = end;
                        }
                        rows.batch(schema)
                    })
                    .await
                    .map_err(|e| SelectError::new(Code::InternalError, format!("a JSON parse task failed: {e}")))?
                }
            })
            .buffered(workers.max(1));
        while let Some(next) = parsed.next().await {
            let out = match next {
                Ok(None) => continue,
                Ok(Some(batch)) => Ok(batch),
                Err(e) => Err(e),
            };
            let failed = out.is_err();
            if tx.send(out).await.is_err() || failed {
                return;
            }
        }
    })
}

pub(crate) fn batches(
    stream: ByteStream,
    kind: JsonType,
    from_path: Vec<Seg>,
    cols: &JsonColumns,
    schema: SchemaRef,
    batch_rows: usize,
    workers: usize,
) -> std::pin::Pin<Box<dyn futures::Stream<Item = Result<RecordBatch>> + Send>> {
    let paths = cols.paths.clone();
    let want_record = cols.record;
    if kind == JsonType::Lines {
        return Box::pin(lines_in_parallel(stream, paths, want_record, from_path, schema, workers));
    }
    // A DOCUMENT read along `[*].key[*]` streams element by element; the rows are then
    // the elements themselves.
    let streamed = json_path::streamable(&from_path);
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
    };
    Box::pin(async_stream(move |tx| async move {
        let mut rows = RowBuilder::new(paths, want_record, from_path);
        loop {
            let rec = match splitter.next().await {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let done = rec.is_none();
            if let Some(mut rec) = rec
                && let Err(e) = rows.add(&mut rec)
            {
                let _ = tx.send(Err(e)).await;
                return;
            }
            if rows.rows >= batch_rows || done {
                match rows.batch(&schema) {
                    Ok(None) => {}
                    Ok(Some(b)) => {
                        if tx.send(Ok(b)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            if done {
                return;
            }
        }
    }))
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
