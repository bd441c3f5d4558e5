//! CSV input: `csv-core` splits records and fields straight out of the object's chunks;
//! only the columns the query references are copied, into Arrow string columns.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};
use futures::StreamExt;

use crate::error::{Code, Result, SelectError};
use crate::request::{CsvInput, FileHeaderInfo};
use crate::source::{ByteStream, io_error};
use crate::sql::{Dynamic, Resolved, Resolver, Seg};

/// AWS's limit on one record.
pub const MAX_RECORD: usize = 1024 * 1024;

pub(crate) struct CsvReader {
    stream: ByteStream,
    chunk: Bytes,
    pos: usize,
    reader: Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    nends: usize,
    eof: bool,
    /// Bytes consumed before the current chunk, for ScanRange bookkeeping.
    consumed: u64,
    /// Stop after the record that starts past this offset of the stream.
    pub stop_after: Option<u64>,
}

impl CsvReader {
    pub fn new(stream: ByteStream, opts: &CsvInput) -> Self {
        let mut b = ReaderBuilder::new();
        b.delimiter(opts.field_delimiter)
            .quote(opts.quote)
            .comment(opts.comments)
            .terminator(match opts.record_delimiter {
                None | Some(b'\n') => Terminator::CRLF,
                Some(d) => Terminator::Any(d),
            });
        if opts.quote_escape == opts.quote {
            b.double_quote(true);
        } else {
            b.double_quote(false).escape(Some(opts.quote_escape));
        }
        Self {
            stream,
            chunk: Bytes::new(),
            pos: 0,
            reader: b.build(),
            out: vec![0; 64 * 1024],
            ends: vec![0; 64],
            nends: 0,
            eof: false,
            consumed: 0,
            stop_after: None,
        }
    }

    /// Offset in the (decompressed) stream of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.consumed + self.pos as u64
    }

    /// The next record, as (field bytes, field end offsets); `None` at the end.
    pub async fn next_record(&mut self) -> Result<Option<(&str, &[usize])>> {
        let mut nout = 0;
        self.nends = 0;
        if let Some(stop) = self.stop_after
            && self.offset() > stop
        {
            return Ok(None);
        }
        loop {
            if self.pos == self.chunk.len() && !self.eof {
                match self.stream.next().await {
                    Some(Ok(c)) => {
                        self.consumed += self.chunk.len() as u64;
                        self.chunk = c;
                        self.pos = 0;
                        continue;
                    }
                    Some(Err(e)) => return Err(io_error(e)),
                    None => {
                        self.consumed += self.chunk.len() as u64;
                        self.chunk = Bytes::new();
                        self.pos = 0;
                        self.eof = true;
                    }
                }
            }
            let input = &self.chunk[self.pos..];
            let (res, nin, no, ne) = self.reader.read_record(input, &mut self.out[nout..], &mut self.ends[self.nends..]);
            self.pos += nin;
            nout += no;
            self.nends += ne;
            match res {
                ReadRecordResult::InputEmpty => {
                    if self.eof {
                        continue;
                    }
                }
                ReadRecordResult::OutputFull => {
                    if self.out.len() >= MAX_RECORD {
                        return Err(SelectError::new(
                            Code::OverMaxRecordSize,
                            format!("a CSV record is longer than {MAX_RECORD} bytes (near byte {})", self.offset()),
                        ));
                    }
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    let text = std::str::from_utf8(&self.out[..nout])
                        .map_err(|e| SelectError::new(Code::InvalidTextEncoding, format!("a CSV record is not valid UTF-8 ({e})")))?;
                    return Ok(Some((text, &self.ends[..self.nends])));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }
}

/// Field `i` of a record given as (text, ends).
fn field<'a>(text: &'a str, ends: &[usize], i: usize) -> Option<&'a str> {
    let end = *ends.get(i)?;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    text.get(start..end)
}

/// Column names and the columns a query uses.
pub(crate) struct CsvColumns {
    /// Header names (`FileHeaderInfo::Use`).
    pub header: Option<Vec<String>>,
    /// Fields in the first data record, for `SELECT *` without a header.
    pub first_width: usize,
    pub used: BTreeSet<usize>,
}

impl CsvColumns {
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.used
                .iter()
                .map(|&i| Field::new(format!("_{}", i + 1), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn use_column(&mut self, i: usize, out_name: String) -> Resolved {
        self.used.insert(i);
        Resolved {
            column: format!("_{}", i + 1),
            out_name,
        }
    }
}

impl Resolver for CsvColumns {
    fn dynamic(&self) -> Dynamic {
        Dynamic::Csv
    }

    fn column(&mut self, path: &[Seg], quoted: bool) -> Result<Resolved> {
        let [Seg::Key(name)] = path else {
            return Err(SelectError::new(
                Code::InvalidColumnIndex,
                "CSV columns are named `_N` or by their header; paths into them are not allowed",
            ));
        };
        if let Some(n) = name
            .strip_prefix('_')
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            let n: usize = n
                .parse()
                .map_err(|_| SelectError::new(Code::InvalidColumnIndex, format!("column index {name} is out of range")))?;
            if n == 0 {
                return Err(SelectError::new(Code::InvalidColumnIndex, "column indexes start at _1"));
            }
            if n > 1_000_000 {
                return Err(SelectError::new(
                    Code::InvalidColumnIndex,
                    format!("column index {name} is out of range"),
                ));
            }
            let out = self
                .header
                .as_ref()
                .and_then(|h| h.get(n - 1).cloned())
                .unwrap_or_else(|| name.clone());
            return Ok(self.use_column(n - 1, out));
        }
        let Some(header) = &self.header else {
            return Err(SelectError::new(
                Code::MissingHeaders,
                format!("column `{name}` is named, but FileHeaderInfo is not USE: refer to columns as _1, _2..."),
            ));
        };
        let found = if quoted {
            header.iter().position(|h| h == name)
        } else {
            header.iter().position(|h| h.eq_ignore_ascii_case(name))
        };
        match found {
            Some(i) => {
                let out = header[i].clone();
                Ok(self.use_column(i, out))
            }
            None => Err(SelectError::new(
                Code::InvalidColumnIndex,
                format!("the CSV header has no column named `{name}`"),
            )),
        }
    }

    fn record(&mut self) -> Result<Resolved> {
        Err(SelectError::new(
            Code::UnsupportedSyntax,
            "a CSV record cannot be selected as one value; use * or name columns",
        ))
    }

    fn all_columns(&mut self) -> Result<Vec<Resolved>> {
        let width = self.header.as_ref().map_or(self.first_width, Vec::len);
        Ok((0..width)
            .map(|i| {
                let out = self.header.as_ref().map_or_else(|| format!("_{}", i + 1), |h| h[i].clone());
                self.use_column(i, out)
            })
            .collect())
    }
}

/// Reads the header (when there is one) and peeks at the first record's width.
pub(crate) async fn open(mut reader: CsvReader, opts: &CsvInput) -> Result<(CsvReader, CsvColumns, Option<Vec<String>>)> {
    let mut header = None;
    if opts.file_header_info != FileHeaderInfo::None
        && let Some((text, ends)) = reader.next_record().await?
    {
        let names: Vec<String> = (0..ends.len()).map(|i| field(text, ends, i).unwrap_or("").to_string()).collect();
        if opts.file_header_info == FileHeaderInfo::Use {
            header = Some(names);
        }
    }
    let first = reader.next_record().await?.map(|(text, ends)| {
        (0..ends.len())
            .map(|i| field(text, ends, i).unwrap_or("").to_string())
            .collect::<Vec<_>>()
    });
    let cols = CsvColumns {
        header,
        first_width: first.as_ref().map_or(0, Vec::len),
        used: BTreeSet::new(),
    };
    Ok((reader, cols, first))
}

/// Turn records into batches of the used columns.
pub(crate) fn batches(
    mut reader: CsvReader,
    used: Vec<usize>,
    schema: SchemaRef,
    first: Option<Vec<String>>,
    batch_rows: usize,
) -> impl futures::Stream<Item = Result<RecordBatch>> + Send {
    async_stream(move |tx| async move {
        let mut first = first;
        loop {
            let mut builders: Vec<StringBuilder> = used
                .iter()
                .map(|_| StringBuilder::with_capacity(batch_rows, batch_rows * 8))
                .collect();
            let mut rows = 0;
            if let Some(rec) = first.take() {
                for (b, &c) in builders.iter_mut().zip(&used) {
                    b.append_option(rec.get(c));
                }
                rows += 1;
            }
            let mut done = false;
            while rows < batch_rows {
                match reader.next_record().await {
                    Ok(Some((text, ends))) => {
                        for (b, &c) in builders.iter_mut().zip(&used) {
                            b.append_option(field(text, ends, c));
                        }
                        rows += 1;
                    }
                    Ok(None) => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            if rows > 0 {
                let columns: Vec<ArrayRef> = builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
                let batch =
                    RecordBatch::try_new_with_options(schema.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(rows)))
                        .map_err(|e| SelectError::new(Code::InternalError, e.to_string()));
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

/// A stream fed by a task: `f` gets a sender and produces items until it returns. The
/// channel holds two items, so a slow consumer stops the producer (bounded memory).
pub(crate) fn async_stream<T, F, Fut>(f: F) -> impl futures::Stream<Item = T> + Send
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn(f(tx));
    let guard = AbortOnDrop(task);
    futures::stream::poll_fn(move |cx| {
        let _ = &guard;
        rx.poll_recv(cx)
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
