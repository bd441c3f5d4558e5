//! Shard files of an erasure-coded object: a writer that cuts a byte stream into blocks,
//! encodes each into `data + parity` shards and appends them, bitrot-framed, to one file
//! per drive; and a reader that serves a byte range by reading only the data-shard bytes
//! the range covers, falling back to a Reed-Solomon rebuild of a block when a shard it needs
//! is missing, truncated or fails its checksum. Blocking std I/O (the engine runs it on
//! per-drive threads); not yet wired into the store.

use crate::bitrot;
use crate::erasure::{Coder, Erasure, ErasureError};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// A shard-file failure.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("writing shard {index}: {source}")]
    Write { index: usize, source: std::io::Error },
    #[error("only {ok} of {total} shard files could be written; {need} are needed")]
    WriteQuorum { ok: usize, total: usize, need: usize },
    #[error("block {block}: {source}")]
    Decode { block: u64, source: ErasureError },
    #[error("range {start}..{end} is outside the object's {size} bytes")]
    Range { start: u64, end: u64, size: u64 },
}

struct Sink {
    file: std::io::BufWriter<File>,
    /// Logical bytes waiting for a full bitrot chunk.
    chunk: Vec<u8>,
}

impl Sink {
    fn push(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let take = (bitrot::CHUNK - self.chunk.len()).min(data.len());
            self.chunk.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.chunk.len() == bitrot::CHUNK {
                self.flush_chunk()?;
            }
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if !self.chunk.is_empty() {
            self.file.write_all(&bitrot::frame(&self.chunk))?;
            self.chunk.clear();
        }
        Ok(())
    }
}

/// Writes one object's shard files, one per drive (`None`: that drive is offline).
pub struct ShardWriter {
    layout: Erasure,
    coder: Coder,
    sinks: Vec<Option<Sink>>,
    block: Vec<u8>,
    shards: Vec<Vec<u8>>,
    size: u64,
}

impl ShardWriter {
    /// Create the shard files at `paths` (one per drive, in set order).
    pub fn create(layout: Erasure, paths: &[Option<PathBuf>]) -> Result<Self, ShardError> {
        let sinks = paths
            .iter()
            .map(|p| {
                p.as_ref().and_then(|p| File::create_new(p).ok()).map(|f| Sink {
                    file: std::io::BufWriter::with_capacity(1 << 20, f),
                    chunk: Vec::with_capacity(bitrot::CHUNK),
                })
            })
            .collect();
        let w = Self {
            layout,
            coder: Coder::new(layout),
            sinks,
            block: Vec::with_capacity(layout.block_size()),
            shards: Vec::new(),
            size: 0,
        };
        w.check_quorum()?;
        Ok(w)
    }

    /// Write quorum: `data` shards, one more when `data == parity` (so two halves of a split
    /// set cannot both accept writes).
    fn check_quorum(&self) -> Result<(), ShardError> {
        let need = self.layout.data() + usize::from(self.layout.data() == self.layout.parity());
        let ok = self.sinks.iter().filter(|s| s.is_some()).count();
        if ok < need {
            Err(ShardError::WriteQuorum {
                ok,
                total: self.sinks.len(),
                need,
            })
        } else {
            Ok(())
        }
    }

    /// Append object bytes.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), ShardError> {
        while !data.is_empty() {
            let take = (self.layout.block_size() - self.block.len()).min(data.len());
            self.block.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.size += take as u64;
            if self.block.len() == self.layout.block_size() {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), ShardError> {
        if self.block.is_empty() {
            return Ok(());
        }
        self.coder
            .encode_into(&self.block, &mut self.shards)
            .map_err(|source| ShardError::Decode {
                block: self.size / self.layout.block_size() as u64,
                source,
            })?;
        for (sink, shard) in self.sinks.iter_mut().zip(&self.shards) {
            // A drive that fails mid-write drops out; the quorum check decides.
            if let Some(s) = sink
                && s.push(shard).is_err()
            {
                *sink = None;
            }
        }
        self.block.clear();
        self.check_quorum()
    }

    /// Flush everything (fsync each file when `durable`); returns the object size and which
    /// shard files are complete.
    pub fn finish(mut self, durable: bool) -> Result<(u64, Vec<bool>), ShardError> {
        self.flush_block()?;
        for sink in &mut self.sinks {
            let ok = match sink {
                Some(s) => s
                    .flush_chunk()
                    .and_then(|()| s.file.flush())
                    .and_then(|()| if durable { s.file.get_ref().sync_data() } else { Ok(()) })
                    .is_ok(),
                None => false,
            };
            if !ok {
                *sink = None;
            }
        }
        self.check_quorum()?;
        Ok((self.size, self.sinks.iter().map(Option::is_some).collect()))
    }
}

/// Read logical bytes `r` of shard file `path` (whose logical length is `len`), verifying
/// every chunk touched; `None` if the file is missing, short or corrupt.
fn read_shard(path: Option<&PathBuf>, len: u64, r: std::ops::Range<u64>) -> Option<Vec<u8>> {
    let f = File::open(path?).ok()?;
    let (phys, skip) = bitrot::physical_range(r.clone(), len);
    let mut buf = vec![0u8; (phys.end - phys.start) as usize];
    f.read_exact_at(&mut buf, phys.start).ok()?;
    let data = bitrot::unframe(&buf, phys.start / (bitrot::CHUNK + bitrot::SUM) as u64).ok()?;
    data.get(skip..skip + (r.end - r.start) as usize).map(<[u8]>::to_vec)
}

/// Read bytes `range` of an object of `size` bytes from its shard files.
pub fn read_range(layout: Erasure, paths: &[Option<PathBuf>], size: u64, range: std::ops::Range<u64>) -> Result<Vec<u8>, ShardError> {
    if range.start > range.end || range.end > size {
        return Err(ShardError::Range {
            start: range.start,
            end: range.end,
            size,
        });
    }
    let bs = layout.block_size() as u64;
    let shard_file_len = layout.shard_file_len(size);
    let full_shard = layout.shard_len(layout.block_size()) as u64;
    let mut out = Vec::with_capacity((range.end - range.start) as usize);
    let mut pos = range.start;
    while pos < range.end {
        let b = pos / bs;
        let block_start = b * bs;
        let block_len = bs.min(size - block_start) as usize;
        let s = layout.shard_len(block_len) as u64;
        let base = b * full_shard;
        let (from, to) = (pos - block_start, range.end.min(block_start + block_len as u64) - block_start);
        // Healthy path: only the data shards the range covers, only the bytes it covers.
        let mut piece = Vec::with_capacity((to - from) as usize);
        let mut healthy = true;
        let mut p = from;
        while p < to {
            let i = (p / s) as usize;
            let end = to.min((i as u64 + 1) * s);
            match read_shard(
                paths.get(i).and_then(Option::as_ref),
                shard_file_len,
                base + p % s..base + (end - i as u64 * s),
            ) {
                Some(bytes) => piece.extend_from_slice(&bytes),
                None => {
                    healthy = false;
                    break;
                }
            }
            p = end;
        }
        if !healthy {
            // Degraded: gather whole shards of this block from every drive and rebuild it.
            let shards: Vec<Option<Vec<u8>>> = (0..layout.data() + layout.parity())
                .map(|i| read_shard(paths.get(i).and_then(Option::as_ref), shard_file_len, base..base + s))
                .collect();
            let refs: Vec<Option<&[u8]>> = shards.iter().map(Option::as_deref).collect();
            let block = layout
                .decode(&refs, block_len)
                .map_err(|source| ShardError::Decode { block: b, source })?;
            piece = block[from as usize..to as usize].to_vec();
        }
        out.extend_from_slice(&piece);
        pos = block_start + to;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(len: usize) -> Vec<u8> {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn write(dir: &std::path::Path, layout: Erasure, data: &[u8]) -> Vec<Option<PathBuf>> {
        let paths: Vec<Option<PathBuf>> = (0..layout.data() + layout.parity())
            .map(|i| Some(dir.join(format!("shard{i}"))))
            .collect();
        let mut w = ShardWriter::create(layout, &paths).unwrap();
        for piece in data.chunks(100_003) {
            w.write(piece).unwrap();
        }
        let (size, ok) = w.finish(false).unwrap();
        assert_eq!(size, data.len() as u64);
        assert!(ok.iter().all(|x| *x));
        paths
    }

    fn ranges(len: u64) -> Vec<std::ops::Range<u64>> {
        vec![
            0..len,
            0..1,
            len - 1..len,
            1000..70_000,
            262_000..263_000,
            300_000..len.min(650_000),
            len / 2..len / 2,
        ]
    }

    #[test]
    fn survives_parity_losses_and_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Erasure::new(2, 2, 256 * 1024).unwrap();
        let data = object(700_001);
        let paths = write(tmp.path(), layout, &data);
        let len = data.len() as u64;
        for r in ranges(len) {
            assert_eq!(
                read_range(layout, &paths, len, r.clone()).unwrap(),
                &data[r.start as usize..r.end as usize],
                "healthy {r:?}"
            );
        }
        // Lose a data shard file and corrupt a byte of the other data shard: still exact.
        std::fs::remove_file(paths[0].as_ref().unwrap()).unwrap();
        let p1 = paths[1].as_ref().unwrap();
        let mut bytes = std::fs::read(p1).unwrap();
        bytes[300_000] ^= 0x01;
        std::fs::write(p1, &bytes).unwrap();
        for r in ranges(len) {
            assert_eq!(
                read_range(layout, &paths, len, r.clone()).unwrap(),
                &data[r.start as usize..r.end as usize],
                "degraded {r:?}"
            );
        }
        // Truncate a parity shard too: three of four gone for some blocks → a clear error.
        let p2 = paths[2].as_ref().unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(p2).unwrap();
        f.set_len(10).unwrap();
        let err = read_range(layout, &paths, len, 0..len).unwrap_err();
        assert!(
            matches!(
                err,
                ShardError::Decode {
                    source: ErasureError::TooFewShards { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn write_quorum() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Erasure::new(2, 2, 64 * 1024).unwrap();
        let mut paths: Vec<Option<PathBuf>> = (0..4).map(|i| Some(tmp.path().join(format!("s{i}")))).collect();
        paths[0] = None;
        // 2+2 needs 3 drives to write (k+1 when k == m): one offline is fine, two are not.
        assert!(ShardWriter::create(layout, &paths).is_ok());
        paths[1] = None;
        let more: Vec<Option<PathBuf>> = paths.iter().map(|p| p.as_ref().map(|p| p.with_extension("b"))).collect();
        assert!(matches!(
            ShardWriter::create(layout, &more),
            Err(ShardError::WriteQuorum { ok: 2, total: 4, need: 3 })
        ));
    }

    #[test]
    fn healthy_reads_never_touch_parity() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Erasure::new(4, 2, 1024 * 1024).unwrap();
        let data = object(3 * 1024 * 1024);
        let paths = write(tmp.path(), layout, &data);
        // With parity files gone the healthy path must not need them.
        for p in &paths[4..] {
            std::fs::remove_file(p.as_ref().unwrap()).unwrap();
        }
        let r = 1_500_000..1_504_096;
        assert_eq!(
            read_range(layout, &paths, data.len() as u64, r.clone()).unwrap(),
            &data[r.start as usize..r.end as usize]
        );
    }
}
