//! Running a query: admission, reading the input, planning with DataFusion, and streaming
//! the result as events.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::execution::TaskContext;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use futures::{Stream, StreamExt};
use tokio::sync::Semaphore;

use crate::csv::{self, CsvReader};
use crate::error::{Code, Result, SelectError};
use crate::output::Writer;
use crate::request::{Compression, Input, JsonType, SelectRequest};
use crate::source::{ByteStream, Counters, ObjectSource};
use crate::task::async_stream;
use crate::{Event, json, parquet, sql, udf};

/// Bounds on Select's use of the machine.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Queries running at once; more wait for a slot.
    pub max_concurrent: usize,
    /// How long a query waits for a slot before it gets a SlowDown error.
    pub queue_wait: Duration,
    /// Memory DataFusion may hold per query (aggregations, sorts); past it the query fails.
    pub memory_per_query: usize,
    /// Rows per Arrow batch.
    pub batch_rows: usize,
    /// Tasks one query parses or decodes its input on at once (CSV blocks, Parquet row
    /// groups).
    pub scan_workers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            max_concurrent: cores * 4,
            queue_wait: Duration::from_secs(30),
            memory_per_query: 512 * 1024 * 1024,
            batch_rows: 8192,
            scan_workers: cores,
        }
    }
}

/// Records payloads are cut at row boundaries near this size.
const RECORDS_CHUNK: usize = 256 * 1024;
/// Without output for this long, a Cont (or Progress) event keeps the connection alive.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// The event stream of one query.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event>> + Send + Sync>>;

/// Runs Select queries within [`Limits`].
#[derive(Clone)]
pub struct Engine {
    limits: Limits,
    slots: Arc<Semaphore>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Engine {
    pub fn new(limits: Limits) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            limits,
        }
    }

    /// Check and plan `req` over `source`. Errors here (bad SQL, unknown columns) come
    /// before any event; errors while scanning arrive as the stream's last item.
    pub async fn start(&self, req: SelectRequest, source: Arc<dyn ObjectSource>) -> Result<EventStream> {
        let permit = tokio::time::timeout(self.limits.queue_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                SelectError::new(
                    Code::Busy,
                    format!("{} Select queries are running; try again later", self.limits.max_concurrent),
                )
            })?
            .map_err(|_| SelectError::new(Code::InternalError, "the Select engine is shut down"))?;
        let parsed = sql::parse(&req.expression)?;
        let counters = Arc::new(Counters::default());
        let rows = self.limits.batch_rows;
        let (planned, schema, input): (sql::Planned, SchemaRef, BatchStream) = match &req.input {
            Input::Csv(opts) => {
                if !parsed.from_path.is_empty() && parsed.from_path != [sql::Seg::Wildcard] {
                    return Err(SelectError::new(
                        Code::UnsupportedSyntax,
                        "paths after S3Object apply to JSON input only",
                    ));
                }
                let stream = open_ranged(&req, source.as_ref(), counters.clone()).await?;
                let (reader, mut cols, first) = csv::open(CsvReader::new(stream, opts), opts).await?;
                let planned = parsed.plan(&mut cols)?;
                let schema = cols.schema();
                let used = cols.used.iter().copied().collect();
                let batches = csv::batches(reader, used, schema.clone(), first, self.limits.scan_workers);
                (planned, schema.clone(), Box::pin(batches))
            }
            Input::Json(opts) => {
                if opts.kind == JsonType::Document && req.scan_range.is_some() {
                    return Err(SelectError::new(
                        Code::InvalidScanRange,
                        "ScanRange applies to CSV and JSON LINES input only",
                    ));
                }
                let mut cols = json::JsonColumns::default();
                let from_path = parsed.from_path.clone();
                let planned = parsed.plan(&mut cols)?;
                let schema = cols.schema();
                let stream = open_ranged(&req, source.as_ref(), counters.clone()).await?;
                let batches = json::batches(stream, opts.kind, from_path, &cols, schema.clone(), rows, self.limits.scan_workers);
                (planned, schema, Box::pin(batches))
            }
            Input::Parquet => {
                if req.compression != Compression::None {
                    return Err(SelectError::new(
                        Code::InvalidCompressionFormat,
                        "Parquet input takes CompressionType NONE (Parquet compresses its own pages)",
                    ));
                }
                if !parsed.from_path.is_empty() {
                    return Err(SelectError::new(
                        Code::UnsupportedSyntax,
                        "paths after S3Object apply to JSON input only",
                    ));
                }
                let mut cols = parquet::open(source.clone(), counters.clone()).await?;
                let planned = parsed.plan(&mut cols)?;
                let schema = cols.table_schema();
                let scan = req.scan_range.map(|r| scan_bounds(r, source.size()));
                let (batches, skipped) = cols.stream(rows, &planned.bounds(), scan, self.limits.scan_workers)?;
                tracing::debug!(skipped, "parquet row groups skipped");
                (planned, schema, Box::pin(batches))
            }
        };
        let results = self.plan(planned.statement, schema, input).await?;
        let mut writer = Writer::new(req.output.clone(), planned.outputs);
        let progress = req.request_progress;
        Ok(Box::pin(async_stream(move |tx| async move {
            let _permit = permit;
            let mut results = results;
            let mut out = String::new();
            let mut ticker = tokio::time::interval(KEEP_ALIVE);
            ticker.tick().await;
            let mut sent_since_tick = false;
            loop {
                tokio::select! {
                    next = results.next() => match next {
                        Some(Ok(batch)) => {
                            let mut row = 0;
                            while row < batch.num_rows() {
                                row = match writer.write(&batch, row, &mut out, RECORDS_CHUNK) {
                                    Ok(r) => r,
                                    Err(e) => { let _ = tx.send(Err(e)).await; return; }
                                };
                                if out.len() >= RECORDS_CHUNK {
                                    if !send_records(&tx, &counters, &mut out).await { return; }
                                    sent_since_tick = true;
                                }
                            }
                        }
                        Some(Err(e)) => {
                            let _ = tx.send(Err(SelectError::from_datafusion(e))).await;
                            return;
                        }
                        None => break,
                    },
                    _ = ticker.tick() => {
                        // Rows found by a selective scan go out within a second, not only
                        // once a full chunk has gathered.
                        if !out.is_empty() {
                            if !send_records(&tx, &counters, &mut out).await { return; }
                            sent_since_tick = true;
                        }
                        let event = if progress { Some(Event::Progress(counters.snapshot())) } else if !sent_since_tick { Some(Event::Cont) } else { None };
                        sent_since_tick = false;
                        if let Some(ev) = event
                            && tx.send(Ok(ev)).await.is_err() { return; }
                    }
                }
            }
            if !out.is_empty() && !send_records(&tx, &counters, &mut out).await {
                return;
            }
            if progress && tx.send(Ok(Event::Progress(counters.snapshot()))).await.is_err() {
                return;
            }
            if tx.send(Ok(Event::Stats(counters.snapshot()))).await.is_err() {
                return;
            }
            let _ = tx.send(Ok(Event::End)).await;
        })))
    }

    async fn plan(&self, statement: sqlparser::ast::Statement, schema: SchemaRef, input: BatchStream) -> Result<SendableRecordBatchStream> {
        let mut config = SessionConfig::new()
            .with_batch_size(self.limits.batch_rows)
            .with_target_partitions(1);
        config.options_mut().sql_parser.map_string_types_to_utf8view = false;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_per_query, 1.0)
            .build_arc()
            .map_err(SelectError::from_datafusion)?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        udf::register(&ctx);
        let partition = Arc::new(OnePartition {
            schema: schema.clone(),
            input: Mutex::new(Some(input)),
        });
        let table = StreamingTable::try_new(schema, vec![partition]).map_err(SelectError::from_datafusion)?;
        ctx.register_table("s3object", Arc::new(table))
            .map_err(SelectError::from_datafusion)?;
        let state = ctx.state();
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await
            .map_err(SelectError::from_planning)?;
        let df = ctx.execute_logical_plan(plan).await.map_err(SelectError::from_planning)?;
        df.execute_stream().await.map_err(SelectError::from_planning)
    }
}

/// Send what `out` holds as one Records event, counted as returned; false once the
/// client has gone.
async fn send_records(tx: &tokio::sync::mpsc::Sender<Result<Event>>, counters: &Counters, out: &mut String) -> bool {
    let chunk = Bytes::from(std::mem::take(out));
    counters
        .returned
        .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
    tx.send(Ok(Event::Records(chunk))).await.is_ok()
}

type BatchStream = Pin<Box<dyn Stream<Item = Result<arrow::array::RecordBatch>> + Send>>;

/// The input as DataFusion's one partition; it can be executed once.
struct OnePartition {
    schema: SchemaRef,
    input: Mutex<Option<BatchStream>>,
}

impl fmt::Debug for OnePartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnePartition").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl PartitionStream for OnePartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.input.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let stream: Pin<Box<dyn Stream<Item = datafusion::error::Result<arrow::array::RecordBatch>> + Send>> = match taken {
            Some(s) => Box::pin(s.map(|r| r.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e))))),
            None => Box::pin(futures::stream::once(async {
                Err(datafusion::error::DataFusionError::Internal(
                    "the object was already scanned".into(),
                ))
            })),
        };
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// A ScanRange as inclusive (start, end) offsets of an object of `size` bytes.
fn scan_bounds(range: crate::request::ScanRange, size: u64) -> (u64, u64) {
    match (range.start, range.end) {
        (None, Some(n)) => (size.saturating_sub(n), size.saturating_sub(1)),
        (s, Some(e)) => (s.unwrap_or(0), e),
        (s, None) => (s.unwrap_or(0), size.saturating_sub(1)),
    }
}

/// The decompressed bytes the scan covers. With a ScanRange, the records that start inside
/// it: a record cut by the start belongs to the range before, and the last record runs past
/// the end to its delimiter.
async fn open_ranged(req: &SelectRequest, source: &dyn ObjectSource, counters: Arc<Counters>) -> Result<ByteStream> {
    let size = source.size();
    let Some(range) = req.scan_range else {
        return crate::source::open(source, 0..size, req.compression, counters).await;
    };
    if req.compression != Compression::None {
        return Err(SelectError::new(
            Code::InvalidScanRange,
            "ScanRange cannot be used with compressed input",
        ));
    }
    // `End` is inclusive; without `Start`, it counts the last End bytes (like an HTTP suffix).
    let (start, end) = scan_bounds(range, size);
    if start > end && size > 0 {
        return Err(SelectError::new(
            Code::InvalidScanRange,
            format!("ScanRange start {start} is after its end {end}"),
        ));
    }
    if start >= size {
        return Ok(Box::pin(futures::stream::empty()));
    }
    let from = start.saturating_sub(1);
    let raw = crate::source::open(source, from..size, Compression::None, counters).await?;
    Ok(Box::pin(cut_records(raw, start > 0, end - from).fuse()))
}

/// Drop bytes up to and including the first newline (when `skip_partial`), and end the
/// stream at the first newline at or after offset `last` (relative to the stream).
fn cut_records(raw: ByteStream, skip_partial: bool, last: u64) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    let state = (raw, skip_partial, 0u64, false);
    futures::stream::unfold(state, move |(mut raw, skipping, mut offset, done)| async move {
        if done {
            return None;
        }
        loop {
            let chunk = match raw.next().await? {
                Ok(c) => c,
                Err(e) => return Some((Err(e), (raw, false, offset, true))),
            };
            let base = offset;
            offset += chunk.len() as u64;
            let mut begin = 0usize;
            if skipping {
                match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        begin = i + 1;
                        if base + i as u64 > last {
                            // The first record starts after the range.
                            return None;
                        }
                    }
                    None => continue,
                }
            }
            // The record that contains `last` runs to its newline.
            let stop_search = last.saturating_sub(base) as usize;
            if stop_search < chunk.len() {
                let from = stop_search.max(begin);
                let end = chunk[from..].iter().position(|&b| b == b'\n').map(|i| from + i + 1);
                match end {
                    Some(e) => return Some((Ok(chunk.slice(begin..e)), (raw, false, offset, true))),
                    None => return Some((Ok(chunk.slice(begin..)), (raw, false, offset, false))),
                }
            }
            return Some((Ok(chunk.slice(begin..)), (raw, false, offset, false)));
        }
    })
}
