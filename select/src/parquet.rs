//! Parquet input: the footer and then only the column chunks the query references are read
//! from the object with ranged reads.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, SchemaRef};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use crate::error::{Code, Result, SelectError};
use crate::source::{Counters, ObjectSource};
use crate::sql::{Bound, Dynamic, Lit, Resolved, Resolver, Seg};

#[derive(Clone)]
pub(crate) struct SourceReader {
    source: Arc<dyn ObjectSource>,
    counters: Arc<Counters>,
}

impl AsyncFileReader for SourceReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            let mut s = self
                .source
                .read(range.clone())
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
            let mut buf = BytesMut::with_capacity((range.end - range.start) as usize);
            while let Some(chunk) = s.next().await {
                buf.extend_from_slice(&chunk.map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?);
            }
            self.counters.scanned.fetch_add(buf.len() as u64, Ordering::Relaxed);
            self.counters.processed.fetch_add(buf.len() as u64, Ordering::Relaxed);
            Ok(buf.freeze())
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.source.size();
            let md = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(md))
        }
        .boxed()
    }
}

/// Whether row group `i`, with these min/max statistics, may hold a row satisfying `b`.
/// Missing statistics, or a type the literal does not compare with, say yes.
fn may_match(mins: &ArrayRef, maxes: &ArrayRef, i: usize, b: &Bound) -> bool {
    use std::cmp::Ordering;
    let cmp_at = |a: &ArrayRef| -> Option<Ordering> {
        if a.is_null(i) {
            return None;
        }
        match &b.value {
            Lit::Number(n) => {
                if !a.data_type().is_numeric() {
                    return None;
                }
                let f = cast(a, &DataType::Float64).ok()?;
                let v = f.as_primitive::<Float64Type>().value(i);
                v.partial_cmp(n)
            }
            Lit::Text(t) => {
                if !matches!(a.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                    return None;
                }
                let s = cast(a, &DataType::Utf8).ok()?;
                Some(s.as_string::<i32>().value(i).cmp(t.as_str()))
            }
        }
    };
    let (Some(lo), Some(hi)) = (cmp_at(mins), cmp_at(maxes)) else {
        return true;
    };
    // lo/hi: how the group's min/max compare with the literal.
    match b.op {
        "=" => lo != Ordering::Greater && hi != Ordering::Less,
        "<" => lo == Ordering::Less,
        "<=" => lo != Ordering::Greater,
        ">" => hi == Ordering::Greater,
        ">=" => hi != Ordering::Less,
        _ => true,
    }
}

fn parquet_error(e: parquet::errors::ParquetError) -> SelectError {
    SelectError::new(Code::ParquetParsingError, format!("the object is not readable Parquet: {e}"))
}

/// The opened file: its schema and the columns a query uses.
pub(crate) struct ParquetColumns {
    reader: SourceReader,
    meta: ArrowReaderMetadata,
    schema: SchemaRef,
    pub used: BTreeSet<usize>,
}

pub(crate) async fn open(source: Arc<dyn ObjectSource>, counters: Arc<Counters>) -> Result<ParquetColumns> {
    let mut reader = SourceReader { source, counters };
    let meta = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
        .await
        .map_err(parquet_error)?;
    let schema = meta.schema().clone();
    Ok(ParquetColumns {
        reader,
        meta,
        schema,
        used: BTreeSet::new(),
    })
}

/// Decoded batches a row group's task may hold ahead of the consumer.
const GROUP_AHEAD: usize = 16;

impl ParquetColumns {
    /// The table's schema: the used columns, in file order.
    pub fn table_schema(&self) -> SchemaRef {
        Arc::new(
            self.schema
                .project(&self.used.iter().copied().collect::<Vec<_>>())
                .expect("indexes come from this schema"),
        )
    }

    /// Stream the used columns of the row groups that may hold matching rows: those whose
    /// statistics do not rule out a WHERE bound and, with a ScanRange, that start inside it.
    /// Up to `workers` row groups are fetched and decoded at once, each on its own task;
    /// batches come out in file order. Returns the stream and how many row groups were
    /// skipped.
    pub fn stream(
        &mut self,
        batch_rows: usize,
        bounds: &[Bound],
        scan: Option<(u64, u64)>,
        workers: usize,
    ) -> Result<(impl futures::Stream<Item = Result<arrow::array::RecordBatch>> + Send + use<>, usize)> {
        let md = self.meta.metadata().clone();
        let groups = md.row_groups();
        let mut keep: Vec<bool> = vec![true; groups.len()];
        if let Some((start, end)) = scan {
            for (i, g) in groups.iter().enumerate() {
                let first = g.columns().iter().map(|c| c.byte_range().0).min().unwrap_or(0);
                keep[i] = first >= start && first <= end;
            }
        }
        for b in bounds {
            let Ok(conv) = StatisticsConverter::try_new(&b.column, self.meta.schema(), self.meta.parquet_schema()) else {
                continue;
            };
            let (Ok(mins), Ok(maxes)) = (conv.row_group_mins(groups.iter()), conv.row_group_maxes(groups.iter())) else {
                continue;
            };
            for (i, k) in keep.iter_mut().enumerate() {
                if *k && !may_match(&mins, &maxes, i, b) {
                    *k = false;
                }
            }
        }
        let chosen: Vec<usize> = keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i).collect();
        let skipped = groups.len() - chosen.len();
        let mask = ProjectionMask::roots(self.meta.parquet_schema(), self.used.iter().copied());
        let (reader, meta) = (self.reader.clone(), self.meta.clone());
        let per_group = move |g: usize| -> Result<_> {
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader.clone(), meta.clone())
                .with_projection(mask.clone())
                .with_row_groups(vec![g])
                .with_batch_size(batch_rows)
                .build()
                .map_err(parquet_error)
        };
        // Fail on a bad projection now, not mid-stream.
        let streams = chosen.into_iter().map(per_group).collect::<Result<Vec<_>>>()?;
        let stream = futures::stream::iter(streams)
            .map(|mut group| {
                futures::future::ready(crate::task::async_stream_ahead(GROUP_AHEAD, move |tx| async move {
                    while let Some(batch) = group.next().await {
                        if tx.send(batch.map_err(parquet_error)).await.is_err() {
                            return;
                        }
                    }
                }))
            })
            .buffered(workers.max(1))
            .flatten();
        Ok((stream, skipped))
    }

    fn use_column(&mut self, i: usize) -> Resolved {
        self.used.insert(i);
        let name = self.schema.field(i).name().clone();
        Resolved {
            column: name.clone(),
            out_name: name,
        }
    }
}

impl Resolver for ParquetColumns {
    fn dynamic(&self) -> Dynamic {
        Dynamic::Typed
    }

    fn column(&mut self, path: &[Seg], quoted: bool) -> Result<Resolved> {
        let [Seg::Key(name)] = path else {
            return Err(SelectError::new(
                Code::UnsupportedSyntax,
                "paths into nested Parquet columns are not supported yet; name a top-level column",
            ));
        };
        let fields = self.schema.fields();
        let exact = fields.iter().position(|f| f.name() == name);
        let found = if quoted {
            exact
        } else {
            exact.or_else(|| fields.iter().position(|f| f.name().eq_ignore_ascii_case(name)))
        };
        if let Some(i) = found {
            return Ok(self.use_column(i));
        }
        if let Some(n) = name.strip_prefix('_').and_then(|n| n.parse::<usize>().ok())
            && n >= 1
            && n <= fields.len()
        {
            return Ok(self.use_column(n - 1));
        }
        Err(SelectError::new(
            Code::InvalidColumnIndex,
            format!("the Parquet file has no column named `{name}`"),
        ))
    }

    fn record(&mut self) -> Result<Resolved> {
        Err(SelectError::new(
            Code::UnsupportedSyntax,
            "a Parquet record cannot be selected as one value; use * or name columns",
        ))
    }

    fn all_columns(&mut self) -> Result<Vec<Resolved>> {
        Ok((0..self.schema.fields().len()).map(|i| self.use_column(i)).collect())
    }
}
