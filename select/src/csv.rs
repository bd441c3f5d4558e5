//! CSV input: `csv-core` splits records and fields straight out of the object's chunks;
//! only the columns the query references are copied, into Arrow string columns.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};
use futures::StreamExt;

use crate::blocks::{BLOCK, Block, cut_blocks};
use crate::error::{Code, Result, SelectError};
use crate::request::{CsvInput, FileHeaderInfo};
use crate::source::{ByteStream, io_error};
use crate::sql::{Dynamic, Resolved, Resolver, Seg};
use crate::task::async_stream;

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
    /// Bytes consumed before the current chunk.
    consumed: u64,
    /// The dialect, for a fresh reader per block (csv-core's `Reader::clone` loses the
    /// built DFA's byte classes, so readers are built, never cloned).
    opts: CsvInput,
}

impl CsvReader {
    pub fn new(stream: ByteStream, opts: &CsvInput) -> Self {
        Self {
            stream,
            chunk: Bytes::new(),
            pos: 0,
            reader: build_reader(opts),
            out: vec![0; 64 * 1024],
            ends: vec![0; 64],
            nends: 0,
            eof: false,
            consumed: 0,
            opts: opts.clone(),
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

/// A csv-core reader for `opts`, at the start of a record.
fn build_reader(opts: &CsvInput) -> Reader {
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
    b.build()
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

/// Turn the records after the header and `first` into batches of the used columns.
///
/// The rest of the input is cut into ~1 MiB blocks after a record delimiter and the blocks
/// are parsed on up to `workers` tasks at once, each as if it began a record; results are
/// taken in order. A delimiter inside a quoted field breaks that guess: the block before
/// then ends in an unfinished record (its tail), and the next block is parsed again,
/// behind that tail, before it is used. So the answer is always that of one sequential
/// parse, and input without quoted delimiters (AWS's AllowQuotedRecordDelimiter=FALSE
/// promise) never parses twice.
pub(crate) fn batches(
    reader: CsvReader,
    used: Vec<usize>,
    schema: SchemaRef,
    first: Option<Vec<String>>,
    workers: usize,
) -> impl futures::Stream<Item = Result<RecordBatch>> + Send {
    let CsvReader {
        stream,
        chunk,
        pos,
        consumed,
        opts,
        ..
    } = reader;
    let delimiter = opts.record_delimiter.unwrap_or(b'\n');
    let job = Arc::new(BlockJob {
        used,
        schema,
        opts,
        delimiter,
    });
    async_stream(move |tx| async move {
        if let Some(rec) = first {
            let mut builders = job.builders(1, 64);
            for (b, &c) in builders.iter_mut().zip(&job.used) {
                b.append_option(rec.get(c));
            }
            if tx.send(job.finish(builders, 1)).await.is_err() {
                return;
            }
        }
        let blocks = cut_blocks(chunk.slice(pos..), stream, delimiter, consumed + pos as u64, MAX_RECORD);
        let job2 = job.clone();
        let mut parsed = blocks
            .map(move |block| {
                let job = job2.clone();
                async move {
                    let block = block?;
                    tokio::task::spawn_blocking(move || job.parse(block, false))
                        .await
                        .map_err(|e| SelectError::new(Code::InternalError, format!("a CSV parse task failed: {e}")))
                }
            })
            .buffered(workers.max(1));
        // An unfinished record carried from the block before, with its offset.
        let mut carry: Option<Block> = None;
        while let Some(next) = parsed.next().await {
            let mut p = match next {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            if let Some(c) = carry.take() {
                let mut joined = Vec::with_capacity(c.data.len() + p.block.data.len());
                joined.extend_from_slice(&c.data);
                joined.extend_from_slice(&p.block.data);
                p = job.parse(
                    Block {
                        data: joined.into(),
                        offset: c.offset,
                    },
                    false,
                );
            }
            let tail = p.tail.take();
            match p.result {
                Ok(Some(batch)) => {
                    if tx.send(Ok(batch)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
            carry = tail;
        }
        if let Some(c) = carry {
            match job.parse(c, true).result {
                Ok(Some(batch)) => {
                    let _ = tx.send(Ok(batch)).await;
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
            }
        }
    })
}

/// One block's parse.
struct ParsedBlock {
    /// The block itself, for a second parse behind an unfinished record.
    block: Block,
    result: Result<Option<RecordBatch>>,
    /// The unfinished record at the block's end.
    tail: Option<Block>,
}

struct BlockJob {
    used: Vec<usize>,
    schema: SchemaRef,
    opts: CsvInput,
    /// The record delimiter; `\n` also means CRLF and CR (csv-core's CRLF mode).
    delimiter: u8,
}

impl BlockJob {
    fn builders(&self, rows: usize, bytes: usize) -> Vec<StringBuilder> {
        self.used.iter().map(|_| StringBuilder::with_capacity(rows, bytes)).collect()
    }

    fn finish(&self, mut builders: Vec<StringBuilder>, rows: usize) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(rows)))
            .map_err(|e| SelectError::new(Code::InternalError, e.to_string()))
    }

    /// Parse `block` from a record start. Without `eof`, a record the block does not finish
    /// is returned as the tail instead of being parsed.
    fn parse(&self, block: Block, eof: bool) -> ParsedBlock {
        let mut reader = build_reader(&self.opts);
        let data = &block.data[..];
        let per_column = data.len() / self.used.len().max(1) / 4;
        let mut builders = self.builders(1024, per_column.min(BLOCK));
        let mut out = vec![0u8; 64 * 1024];
        let mut ends = vec![0usize; 64];
        let (mut pos, mut nout, mut nends, mut rows) = (0usize, 0usize, 0usize, 0usize);
        // Where the record being read began.
        let mut record_start = 0usize;
        let fail = |block: Block, e: SelectError| ParsedBlock {
            block,
            result: Err(e),
            tail: None,
        };
        loop {
            let input = &data[pos..];
            if input.is_empty() && !eof {
                break;
            }
            let (res, nin, no, ne) = reader.read_record(input, &mut out[nout..], &mut ends[nends..]);
            pos += nin;
            nout += no;
            nends += ne;
            match res {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    if out.len() >= MAX_RECORD {
                        let at = block.offset + record_start as u64;
                        return fail(
                            block,
                            SelectError::new(
                                Code::OverMaxRecordSize,
                                format!("a CSV record is longer than {MAX_RECORD} bytes (near byte {at})"),
                            ),
                        );
                    }
                    let n = out.len() * 2;
                    out.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = ends.len() * 2;
                    ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    let text = match std::str::from_utf8(&out[..nout]) {
                        Ok(t) => t,
                        Err(e) => {
                            return fail(
                                block,
                                SelectError::new(Code::InvalidTextEncoding, format!("a CSV record is not valid UTF-8 ({e})")),
                            );
                        }
                    };
                    let fields = &ends[..nends];
                    for (b, &c) in builders.iter_mut().zip(&self.used) {
                        b.append_option(field(text, fields, c));
                    }
                    rows += 1;
                    nout = 0;
                    nends = 0;
                    record_start = pos;
                }
                ReadRecordResult::End => break,
            }
        }
        // What follows the last record: nothing, stray terminators, or an unfinished record
        // (skipped comment lines land here too and are simply parsed again).
        let rest = &data[record_start..];
        let terminator = |b: u8| b == self.delimiter || (self.delimiter == b'\n' && b == b'\r');
        let tail = (!eof && !rest.iter().all(|&b| terminator(b))).then(|| Block {
            data: block.data.slice(record_start..),
            offset: block.offset + record_start as u64,
        });
        let result = if rows == 0 {
            Ok(None)
        } else {
            self.finish(builders, rows).map(Some)
        };
        ParsedBlock { block, result, tail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, StringArray};

    fn job(opts: CsvInput, width: usize) -> BlockJob {
        BlockJob {
            used: (0..width).collect(),
            schema: Arc::new(Schema::new(
                (0..width)
                    .map(|i| Field::new(format!("_{}", i + 1), DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            )),
            delimiter: opts.record_delimiter.unwrap_or(b'\n'),
            opts,
        }
    }

    fn rows(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
        let mut out = Vec::new();
        for b in batches {
            for r in 0..b.num_rows() {
                out.push(
                    b.columns()
                        .iter()
                        .map(|c| {
                            let c = c.as_any().downcast_ref::<StringArray>().unwrap();
                            (!c.is_null(r)).then(|| c.value(r).to_string())
                        })
                        .collect(),
                );
            }
        }
        out
    }

    /// Parse `data` cut at every delimiter after `step` bytes, as the parallel path does,
    /// with the carry logic of `batches`.
    fn parse_cut(job: &BlockJob, data: &[u8], step: usize) -> Vec<RecordBatch> {
        let mut blocks = Vec::new();
        let mut start = 0;
        while start < data.len() {
            let want = (start + step).min(data.len());
            let cut = data[start..want]
                .iter()
                .rposition(|&b| b == job.delimiter)
                .map_or(data.len().min(want.max(start + 1)), |i| start + i + 1);
            blocks.push(Bytes::copy_from_slice(&data[start..cut]));
            start = cut;
        }
        let mut out = Vec::new();
        let mut carry: Option<Block> = None;
        let mut offset = 0;
        for b in blocks {
            let len = b.len() as u64;
            let mut p = job.parse(Block { data: b, offset }, false);
            offset += len;
            if let Some(c) = carry.take() {
                let joined = [&c.data[..], &p.block.data[..]].concat();
                p = job.parse(
                    Block {
                        data: joined.into(),
                        offset: c.offset,
                    },
                    false,
                );
            }
            carry = p.tail.take();
            out.extend(p.result.unwrap());
        }
        if let Some(c) = carry {
            out.extend(job.parse(c, true).result.unwrap());
        }
        out
    }

    #[test]
    fn blocks_agree_with_one_parse_whatever_the_cuts() {
        let data = b"a,\"x\ny\",1\r\nb,\"q\"\"\n\n\",2\n\nc,plain,3\n#note\nd,\"\",4\ne,last,5";
        let opts = CsvInput {
            comments: Some(b'#'),
            ..CsvInput::default()
        };
        let job = job(opts, 3);
        let whole = rows(
            &job.parse(
                Block {
                    data: Bytes::copy_from_slice(data),
                    offset: 0,
                },
                true,
            )
            .result
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        );
        assert_eq!(whole.len(), 5, "{whole:?}");
        assert_eq!(whole[0][1].as_deref(), Some("x\ny"));
        assert_eq!(whole[1][1].as_deref(), Some("q\"\n\n"));
        assert_eq!(whole[4][1].as_deref(), Some("last"));
        for step in 1..data.len() + 2 {
            assert_eq!(rows(&parse_cut(&job, data, step)), whole, "blocks of {step} bytes");
        }
    }

    #[test]
    fn custom_delimiter_blocks() {
        let data = b"1,a;2,\"b;c\";3,d;";
        let opts = CsvInput {
            record_delimiter: Some(b';'),
            ..CsvInput::default()
        };
        let job = job(opts, 2);
        for step in 1..data.len() + 2 {
            let got = rows(&parse_cut(&job, data, step));
            let second: Vec<_> = got.iter().map(|r| r[1].clone().unwrap()).collect();
            assert_eq!(second, ["a", "b;c", "d"], "blocks of {step} bytes");
        }
    }
}
