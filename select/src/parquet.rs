//! Parquet input: the footer and then only the column chunks the query references are read
//! from the object with ranged reads.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::datatypes::SchemaRef;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use crate::error::{Code, Result, SelectError};
use crate::source::{Counters, ObjectSource};
use crate::sql::{Dynamic, Resolved, Resolver, Seg};

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

fn parquet_error(e: parquet::errors::ParquetError) -> SelectError {
    SelectError::new(Code::ParquetParsingError, format!("the object is not readable Parquet: {e}"))
}

/// The opened file: its schema and the columns a query uses.
pub(crate) struct ParquetColumns {
    builder: Option<ParquetRecordBatchStreamBuilder<SourceReader>>,
    schema: SchemaRef,
    pub used: BTreeSet<usize>,
}

pub(crate) async fn open(source: Arc<dyn ObjectSource>, counters: Arc<Counters>) -> Result<ParquetColumns> {
    let reader = SourceReader { source, counters };
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await.map_err(parquet_error)?;
    let schema = builder.schema().clone();
    Ok(ParquetColumns {
        builder: Some(builder),
        schema,
        used: BTreeSet::new(),
    })
}

impl ParquetColumns {
    /// The table's schema: the used columns, in file order.
    pub fn table_schema(&self) -> SchemaRef {
        Arc::new(
            self.schema
                .project(&self.used.iter().copied().collect::<Vec<_>>())
                .expect("indexes come from this schema"),
        )
    }

    pub fn stream(&mut self, batch_rows: usize) -> Result<impl futures::Stream<Item = Result<arrow::array::RecordBatch>> + Send + use<>> {
        let builder = self.builder.take().expect("stream is taken once");
        let mask = ProjectionMask::roots(builder.parquet_schema(), self.used.iter().copied());
        let stream = builder
            .with_projection(mask)
            .with_batch_size(batch_rows)
            .build()
            .map_err(parquet_error)?;
        Ok(stream.map(|r| r.map_err(parquet_error)))
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
        if let Some(n) = name.strip_prefix('_').and_then(|n| n.parse::<usize>().ok()) {
            if n >= 1 && n <= fields.len() {
                return Ok(self.use_column(n - 1));
            }
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
