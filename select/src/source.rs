//! The object's bytes, as this crate sees them: a byte-stream trait the server implements
//! over storage, decompression, and honest byte counts for the Stats event.

use std::io::{self, Write};
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::error::{Code, Result, SelectError};
use crate::request::Compression;

pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// One version of one object. Every read must come from the same version: the server
/// pins it when the query starts, so an overwrite during a long scan never mixes two.
#[async_trait::async_trait]
pub trait ObjectSource: Send + Sync + 'static {
    /// The object's size in bytes.
    fn size(&self) -> u64;
    /// Stream `range` of the object.
    async fn read(&self, range: Range<u64>) -> io::Result<ByteStream>;
}

/// Byte counts for Progress and Stats events.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes read from the object (compressed, as stored).
    pub scanned: AtomicU64,
    /// Bytes after decompression.
    pub processed: AtomicU64,
    /// Bytes of records sent back.
    pub returned: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> crate::Stats {
        crate::Stats {
            bytes_scanned: self.scanned.load(Ordering::Relaxed),
            bytes_processed: self.processed.load(Ordering::Relaxed),
            bytes_returned: self.returned.load(Ordering::Relaxed),
        }
    }
}

/// Reads `range` of the object, decompressed, counting bytes on both sides.
pub(crate) async fn open(
    source: &dyn ObjectSource,
    range: Range<u64>,
    compression: Compression,
    counters: Arc<Counters>,
) -> Result<ByteStream> {
    let raw = source.read(range).await.map_err(io_error)?;
    let c2 = counters.clone();
    let raw = raw.map(move |chunk| {
        if let Ok(b) = &chunk {
            c2.scanned.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
        chunk
    });
    let decoded: ByteStream = match compression {
        Compression::None => Box::pin(raw),
        Compression::Gzip => Box::pin(decompress(raw, flate2::write::MultiGzDecoder::new(Vec::new()))),
        Compression::Bzip2 => Box::pin(decompress(raw, MultiBz::default())),
        Compression::Zstd => {
            let decoder = zstd::stream::write::Decoder::new(Vec::new())
                .map_err(|e| SelectError::new(Code::InternalError, format!("cannot start a ZSTD decoder: {e}")))?;
            Box::pin(decompress(raw, decoder))
        }
    };
    // Fused: readers may ask again after the end (or after an error) and must get `None`.
    Ok(Box::pin(
        decoded
            .map(move |chunk| {
                if let Ok(b) = &chunk {
                    counters.processed.fetch_add(b.len() as u64, Ordering::Relaxed);
                }
                chunk
            })
            .fuse(),
    ))
}

/// A decoder that is written compressed bytes and collects the plain ones in a `Vec`.
trait PushDecoder: Write + Send + 'static {
    fn take(&mut self) -> Vec<u8>;
    fn finish_stream(&mut self) -> io::Result<()>;
}

impl PushDecoder for flate2::write::MultiGzDecoder<Vec<u8>> {
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.get_mut())
    }
    fn finish_stream(&mut self) -> io::Result<()> {
        self.try_finish()
    }
}

/// zstd's stream decoder reads concatenated frames back to back by itself.
impl PushDecoder for zstd::stream::write::Decoder<'static, Vec<u8>> {
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.get_mut())
    }
    fn finish_stream(&mut self) -> io::Result<()> {
        // Drain what the decoder holds, then insist the last frame was complete.
        self.flush()?;
        self.do_finish()
    }
}

/// bzip2's writer decodes one stream; files made by `pbzip2` or `cat a.bz2 b.bz2` hold
/// several, read back to back.
struct MultiBz {
    inner: bzip2::write::BzDecoder<Vec<u8>>,
    out: Vec<u8>,
}

impl Default for MultiBz {
    fn default() -> Self {
        Self {
            inner: bzip2::write::BzDecoder::new(Vec::new()),
            out: Vec::new(),
        }
    }
}

impl Write for MultiBz {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let n = self.inner.write(data)?;
        if n > 0 {
            return Ok(n);
        }
        // The current stream ended: what follows is the next one.
        self.inner.try_finish()?;
        self.out.append(self.inner.get_mut());
        self.inner = bzip2::write::BzDecoder::new(Vec::new());
        self.inner.write(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PushDecoder for MultiBz {
    fn take(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.append(self.inner.get_mut());
        out
    }
    fn finish_stream(&mut self) -> io::Result<()> {
        self.inner.try_finish()
    }
}

fn decompress<S, D>(input: S, decoder: D) -> impl Stream<Item = io::Result<Bytes>> + Send
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    D: PushDecoder,
{
    let state = (Box::pin(input), Some(decoder));
    futures::stream::unfold(state, |(mut input, mut decoder)| async move {
        loop {
            let d = decoder.as_mut()?;
            match input.next().await {
                Some(Ok(chunk)) => {
                    // Feed in slices so one compressed chunk cannot expand without bound.
                    let mut out = Vec::new();
                    for piece in chunk.chunks(64 * 1024) {
                        if let Err(e) = d.write_all(piece) {
                            return Some((Err(bad_compression(e)), (input, None)));
                        }
                        out.extend_from_slice(&d.take());
                    }
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), (input, decoder)));
                    }
                }
                Some(Err(e)) => return Some((Err(e), (input, None))),
                None => {
                    let mut d = decoder.take()?;
                    if let Err(e) = d.finish_stream() {
                        return Some((Err(bad_compression(e)), (input, None)));
                    }
                    let out = d.take();
                    return if out.is_empty() {
                        None
                    } else {
                        Some((Ok(Bytes::from(out)), (input, None)))
                    };
                }
            }
        }
    })
}

fn bad_compression(e: io::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("InvalidCompressionFormat: {e}"))
}

/// Map a read error to the Select error it means.
pub(crate) fn io_error(e: io::Error) -> SelectError {
    let text = e.to_string();
    if let Some(m) = text.strip_prefix("InvalidCompressionFormat: ") {
        return SelectError::new(Code::InvalidCompressionFormat, format!("the object could not be decompressed: {m}"));
    }
    SelectError::new(Code::InternalError, format!("reading the object failed: {text}"))
}

/// An in-memory object, for tests and benchmarks.
pub struct MemorySource(pub Bytes);

#[async_trait::async_trait]
impl ObjectSource for MemorySource {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    async fn read(&self, range: Range<u64>) -> io::Result<ByteStream> {
        let end = (range.end as usize).min(self.0.len());
        let start = (range.start as usize).min(end);
        let data = self.0.slice(start..end);
        // Deliver in 64 KiB pieces, as storage does, so chunk boundaries get exercised.
        let pieces: Vec<io::Result<Bytes>> = (0..data.len())
            .step_by(64 * 1024)
            .map(|i| Ok(data.slice(i..(i + 64 * 1024).min(data.len()))))
            .collect();
        Ok(Box::pin(futures::stream::iter(pieces)))
    }
}
