//! Shard files of an erasure-coded object: a writer that cuts a byte stream into blocks,
//! encodes each into `data + parity` shards and appends them, bitrot-framed, to one file
//! per drive; a reader that serves a byte range by reading only the data-shard bytes the
//! range covers, falling back to a Reed-Solomon rebuild of a block when a shard it needs is
//! missing, truncated or fails its checksum; and a rebuilder that rewrites lost shards.
//! Blocking calls, run on the store's I/O threads; every batch goes through an
//! [`IoEngine`], so the shards of a block are read or written together.

use crate::bitrot;
use crate::erasure::{Coder, Erasure, ErasureError};
use crate::io::{IoEngine, ReadOp, WriteOp};
use bytes::Bytes;
use std::fs::File;

/// A shard-file failure.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("only {ok} of {total} shard files could be written; {need} are needed")]
    WriteQuorum { ok: usize, total: usize, need: usize },
    #[error("block {block}: {source}")]
    Decode { block: u64, source: ErasureError },
    #[error("range {start}..{end} is outside the object's {size} bytes")]
    Range { start: u64, end: u64, size: u64 },
    #[error("writing a rebuilt shard: {0}")]
    Io(std::io::Error),
}

/// Drives that must take a write: `data` shards, one more when `data == parity` (so two
/// halves of a split set cannot both accept writes).
pub fn write_quorum(layout: Erasure) -> usize {
    layout.data() + usize::from(layout.data() == layout.parity())
}

/// Writes one object's shard files (`files[i]` holds shard `i`; `None`: drive offline).
pub struct ShardWriter {
    layout: Erasure,
    coder: Coder,
    files: Vec<Option<File>>,
    /// Bytes written to each file so far.
    offsets: Vec<u64>,
    /// Logical shard bytes waiting for a full bitrot chunk, per shard.
    chunks: Vec<Vec<u8>>,
    /// Framed bytes ready to write, per shard.
    out: Vec<Vec<u8>>,
    block: Vec<u8>,
    shards: Vec<Vec<u8>>,
    size: u64,
}

impl ShardWriter {
    /// A writer over freshly created shard files, in shard order.
    pub fn new(layout: Erasure, files: Vec<Option<File>>) -> Result<Self, ShardError> {
        let n = files.len();
        let w = Self {
            layout,
            coder: Coder::new(layout),
            files,
            offsets: vec![0; n],
            chunks: (0..n).map(|_| Vec::with_capacity(bitrot::CHUNK)).collect(),
            out: vec![Vec::new(); n],
            block: Vec::with_capacity(layout.block_size()),
            shards: Vec::new(),
            size: 0,
        };
        w.check_quorum()?;
        Ok(w)
    }

    fn check_quorum(&self) -> Result<(), ShardError> {
        let need = write_quorum(self.layout);
        let ok = self.files.iter().filter(|s| s.is_some()).count();
        if ok < need {
            Err(ShardError::WriteQuorum {
                ok,
                total: self.files.len(),
                need,
            })
        } else {
            Ok(())
        }
    }

    /// Append object bytes; full blocks are encoded and written before this returns.
    pub fn write(&mut self, io: &IoEngine, mut data: &[u8]) -> Result<(), ShardError> {
        while !data.is_empty() {
            let take = (self.layout.block_size() - self.block.len()).min(data.len());
            self.block.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.size += take as u64;
            if self.block.len() == self.layout.block_size() {
                self.encode_block()?;
            }
        }
        self.flush(io)
    }

    fn encode_block(&mut self) -> Result<(), ShardError> {
        if self.block.is_empty() {
            return Ok(());
        }
        self.coder
            .encode_into(&self.block, &mut self.shards)
            .map_err(|source| ShardError::Decode {
                block: self.size / self.layout.block_size() as u64,
                source,
            })?;
        for (i, shard) in self.shards.iter().enumerate() {
            let mut rest: &[u8] = shard;
            while !rest.is_empty() {
                let c = &mut self.chunks[i];
                let take = (bitrot::CHUNK - c.len()).min(rest.len());
                c.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if c.len() == bitrot::CHUNK {
                    bitrot::frame_into(c, &mut self.out[i]);
                    c.clear();
                }
            }
        }
        self.block.clear();
        Ok(())
    }

    /// Write the framed bytes waiting for each live file, as one batch.
    fn flush(&mut self, io: &IoEngine) -> Result<(), ShardError> {
        let mut which = Vec::new();
        let mut ops = Vec::new();
        for (i, (f, out)) in self.files.iter().zip(&self.out).enumerate() {
            if let Some(f) = f
                && !out.is_empty()
            {
                which.push(i);
                ops.push(WriteOp {
                    file: f,
                    offset: self.offsets[i],
                    data: out,
                });
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        let results = io.write_many(&ops);
        drop(ops);
        for (i, r) in which.into_iter().zip(results) {
            match r {
                Ok(()) => self.offsets[i] += self.out[i].len() as u64,
                Err(e) => {
                    // A drive that fails mid-write drops out; the quorum check decides.
                    tracing::warn!(shard = i, error = %e, "shard write failed");
                    self.files[i] = None;
                }
            }
        }
        for o in &mut self.out {
            o.clear();
        }
        self.check_quorum()
    }

    /// Flush everything (fdatasync each file when `durable`); returns the object size and
    /// which shard files are complete.
    pub fn finish(mut self, io: &IoEngine, durable: bool) -> Result<(u64, Vec<bool>), ShardError> {
        self.encode_block()?;
        for (c, out) in self.chunks.iter_mut().zip(self.out.iter_mut()) {
            if !c.is_empty() {
                bitrot::frame_into(c, out);
                c.clear();
            }
        }
        self.flush(io)?;
        if durable {
            let live: Vec<(usize, &File)> = self
                .files
                .iter()
                .enumerate()
                .filter_map(|(i, f)| f.as_ref().map(|f| (i, f)))
                .collect();
            let refs: Vec<&File> = live.iter().map(|(_, f)| *f).collect();
            let results = io.sync_many(&refs);
            let failed: Vec<usize> = live.iter().zip(results).filter(|(_, r)| r.is_err()).map(|((i, _), _)| *i).collect();
            for i in failed {
                self.files[i] = None;
            }
        }
        self.check_quorum()?;
        Ok((self.size, self.files.iter().map(Option::is_some).collect()))
    }
}

/// What a read found besides the bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Shards found missing, short or corrupt (the object needs healing).
    pub bad_shards: Vec<usize>,
}

/// One shard's verified logical bytes `r` (the shard file's logical length is `len`).
struct ShardRead {
    shard: usize,
    phys: std::ops::Range<u64>,
    skip: usize,
    want: usize,
    buf: Vec<u8>,
}

fn plan(shard: usize, len: u64, r: std::ops::Range<u64>) -> ShardRead {
    let (phys, skip) = bitrot::physical_range(r.clone(), len);
    ShardRead {
        shard,
        buf: vec![0u8; (phys.end - phys.start) as usize],
        phys,
        skip,
        want: (r.end - r.start) as usize,
    }
}

/// Run the reads in one batch; each result is the verified bytes or `None` (lost shard).
/// The bytes are the read buffer itself, verified and compacted in place (no copy).
fn run_reads(io: &IoEngine, files: &[Option<File>], reads: &mut [ShardRead]) -> Vec<Option<Bytes>> {
    let mut slots: Vec<usize> = Vec::new();
    let mut ops: Vec<ReadOp> = Vec::new();
    for (n, r) in reads.iter_mut().enumerate() {
        if let Some(Some(f)) = files.get(r.shard) {
            slots.push(n);
            ops.push(ReadOp {
                file: f,
                offset: r.phys.start,
                buf: &mut r.buf,
            });
        }
    }
    let results = io.read_many(&mut ops);
    drop(ops);
    let mut out: Vec<Option<Bytes>> = vec![None; reads.len()];
    for (n, res) in slots.into_iter().zip(results) {
        if res.is_err() {
            continue;
        }
        let r = &mut reads[n];
        let first_chunk = r.phys.start / (bitrot::CHUNK + bitrot::SUM) as u64;
        let mut buf = std::mem::take(&mut r.buf);
        if bitrot::unframe_in_place(&mut buf, first_chunk).is_ok() && r.skip + r.want <= buf.len() {
            out[n] = Some(Bytes::from(buf).slice(r.skip..r.skip + r.want));
        }
    }
    out
}

/// Read bytes `range` of an object of `size` bytes from its shard files (`files[i]` holds
/// shard `i`). Healthy reads fetch only the data-shard bytes the range covers, all in one
/// batch; a block with a lost shard is rebuilt from any `data` shards.
pub fn read_range(
    io: &IoEngine,
    layout: Erasure,
    files: &[Option<File>],
    size: u64,
    range: std::ops::Range<u64>,
) -> Result<(Bytes, ReadReport), ShardError> {
    if range.start > range.end || range.end > size {
        return Err(ShardError::Range {
            start: range.start,
            end: range.end,
            size,
        });
    }
    let bs = layout.block_size() as u64;
    let file_len = layout.shard_file_len(size);
    let full_shard = layout.shard_len(layout.block_size()) as u64;
    // Healthy path: every data-shard piece of every block, one batch.
    let mut pieces = Vec::new();
    let mut pos = range.start;
    while pos < range.end {
        let b = pos / bs;
        let block_start = b * bs;
        let block_len = bs.min(size - block_start);
        let s = layout.shard_len(block_len as usize) as u64;
        let base = b * full_shard;
        let to = range.end.min(block_start + block_len) - block_start;
        let mut p = pos - block_start;
        while p < to {
            let i = p / s;
            let end = to.min((i + 1) * s);
            pieces.push(plan(i as usize, file_len, base + p % s..base + (end - i * s)));
            p = end;
        }
        pos = block_start + to;
    }
    let got = run_reads(io, files, &mut pieces);
    let mut report = ReadReport::default();
    if got.iter().all(Option::is_some) {
        // One piece (a range within one data shard) is returned as read; several are joined.
        if got.len() == 1 {
            return Ok((got.into_iter().flatten().next().expect("one piece"), report));
        }
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        for g in got.into_iter().flatten() {
            out.extend_from_slice(&g);
        }
        return Ok((out.into(), report));
    }
    // Degraded: rebuild each block from whatever shards verify.
    for (p, g) in pieces.iter().zip(&got) {
        if g.is_none() && !report.bad_shards.contains(&p.shard) {
            report.bad_shards.push(p.shard);
        }
    }
    let mut out = Vec::with_capacity((range.end - range.start) as usize);
    let mut pos = range.start;
    while pos < range.end {
        let b = pos / bs;
        let block_start = b * bs;
        let block_len = bs.min(size - block_start) as usize;
        let from = pos - block_start;
        let to = range.end.min(block_start + block_len as u64) - block_start;
        let s = layout.shard_len(block_len) as u64;
        if from / s == (to - 1) / s {
            // Within one data shard: rebuild only the columns the range covers.
            let piece = read_columns(io, layout, files, file_len, b, s, from..to, &mut report)?;
            out.extend_from_slice(&piece);
        } else {
            let block = read_block(io, layout, files, file_len, b, block_len, &mut report)?;
            out.extend_from_slice(&block[from as usize..to as usize]);
        }
        pos = block_start + to;
    }
    report.bad_shards.sort_unstable();
    Ok((out.into(), report))
}

/// Run one read per shard (`reads[i]` reads shard `i`) and note the shards that failed.
fn read_every_shard(io: &IoEngine, files: &[Option<File>], reads: &mut [ShardRead], report: &mut ReadReport) -> Vec<Option<Bytes>> {
    let got = run_reads(io, files, reads);
    for (i, g) in got.iter().enumerate() {
        if g.is_none() && !report.bad_shards.contains(&i) {
            report.bad_shards.push(i);
        }
    }
    got
}

/// Bytes `r` of block `b` (shards of `s` bytes), all inside one data shard, rebuilt from
/// the same 64-byte-aligned columns of every shard that verifies.
#[allow(clippy::too_many_arguments)]
fn read_columns(
    io: &IoEngine,
    layout: Erasure,
    files: &[Option<File>],
    file_len: u64,
    b: u64,
    s: u64,
    r: std::ops::Range<u64>,
    report: &mut ReadReport,
) -> Result<Vec<u8>, ShardError> {
    let want = (r.start / s) as usize;
    let (lo, hi) = (r.start % s, (r.end - 1) % s + 1);
    let c0 = lo / 64 * 64;
    let c1 = hi.div_ceil(64).saturating_mul(64).min(s);
    let base = b * layout.shard_len(layout.block_size()) as u64;
    let total = layout.data() + layout.parity();
    let mut reads: Vec<ShardRead> = (0..total).map(|i| plan(i, file_len, base + c0..base + c1)).collect();
    let got = read_every_shard(io, files, &mut reads, report);
    let refs: Vec<Option<&[u8]>> = got.iter().map(Option::as_deref).collect();
    let cols = layout
        .decode_columns(&refs, want)
        .map_err(|source| ShardError::Decode { block: b, source })?;
    Ok(cols[(lo - c0) as usize..(hi - c0) as usize].to_vec())
}

/// Block `b` (of `block_len` bytes) rebuilt from every shard that verifies.
fn read_block(
    io: &IoEngine,
    layout: Erasure,
    files: &[Option<File>],
    file_len: u64,
    b: u64,
    block_len: usize,
    report: &mut ReadReport,
) -> Result<Vec<u8>, ShardError> {
    let s = layout.shard_len(block_len) as u64;
    let base = b * layout.shard_len(layout.block_size()) as u64;
    let total = layout.data() + layout.parity();
    // Data shards first; parity only for as many as are lost.
    let mut reads: Vec<ShardRead> = (0..total).map(|i| plan(i, file_len, base..base + s)).collect();
    let got = read_every_shard(io, files, &mut reads, report);
    let refs: Vec<Option<&[u8]>> = got.iter().map(Option::as_deref).collect();
    layout
        .decode(&refs, block_len)
        .map_err(|source| ShardError::Decode { block: b, source })
}

/// Rewrite shards `targets` of an object of `size` bytes: every block is read from the
/// shards in `files` that verify, rebuilt and re-encoded, and the target shards' framed
/// bytes are written to `outputs` (one fresh file per target, same order).
pub fn rebuild(
    io: &IoEngine,
    layout: Erasure,
    files: &[Option<File>],
    size: u64,
    targets: &[usize],
    outputs: &[File],
    durable: bool,
) -> Result<(), ShardError> {
    let bs = layout.block_size() as u64;
    let file_len = layout.shard_file_len(size);
    let mut coder = Coder::new(layout);
    let mut shards = Vec::new();
    let mut logical: Vec<Vec<u8>> = vec![Vec::new(); targets.len()];
    let mut written = 0u64;
    let mut report = ReadReport::default();
    let blocks = size.div_ceil(bs);
    for b in 0..blocks {
        let block_len = bs.min(size - b * bs) as usize;
        let block = read_block(io, layout, files, file_len, b, block_len, &mut report)?;
        coder
            .encode_into(&block, &mut shards)
            .map_err(|source| ShardError::Decode { block: b, source })?;
        for (t, &i) in targets.iter().enumerate() {
            logical[t].extend_from_slice(&shards[i]);
        }
        // Write whole chunks as they accumulate, keeping memory to a few blocks.
        let last = b + 1 == blocks;
        let have = logical.first().map_or(0, Vec::len);
        if last || have >= 4 * bitrot::CHUNK {
            let cut = if last { have } else { have / bitrot::CHUNK * bitrot::CHUNK };
            let framed: Vec<Vec<u8>> = logical.iter().map(|l| bitrot::frame(&l[..cut])).collect();
            let ops: Vec<WriteOp> = outputs
                .iter()
                .zip(&framed)
                .map(|(f, data)| WriteOp {
                    file: f,
                    offset: written,
                    data,
                })
                .collect();
            for r in io.write_many(&ops) {
                r.map_err(ShardError::Io)?;
            }
            written += framed.first().map_or(0, |f| f.len() as u64);
            for l in &mut logical {
                l.drain(..cut);
            }
        }
    }
    if durable {
        let refs: Vec<&File> = outputs.iter().collect();
        for r in io.sync_many(&refs) {
            r.map_err(ShardError::Io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::EngineKind;
    use std::path::{Path, PathBuf};

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

    fn engines() -> Vec<IoEngine> {
        vec![IoEngine::new(EngineKind::Std), IoEngine::new(EngineKind::Uring)]
    }

    fn create(paths: &[PathBuf]) -> Vec<Option<File>> {
        paths
            .iter()
            .map(|p| Some(std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(p).unwrap()))
            .collect()
    }

    fn open(paths: &[PathBuf]) -> Vec<Option<File>> {
        paths.iter().map(|p| File::open(p).ok()).collect()
    }

    fn write(io: &IoEngine, dir: &Path, layout: Erasure, data: &[u8]) -> Vec<PathBuf> {
        let paths: Vec<PathBuf> = (0..layout.data() + layout.parity())
            .map(|i| dir.join(format!("shard{i}")))
            .collect();
        let mut w = ShardWriter::new(layout, create(&paths)).unwrap();
        for piece in data.chunks(100_003) {
            w.write(io, piece).unwrap();
        }
        let (size, ok) = w.finish(io, true).unwrap();
        assert_eq!(size, data.len() as u64);
        assert!(ok.iter().all(|x| *x));
        for p in &paths {
            let want = bitrot::framed_len(layout.shard_file_len(size));
            assert_eq!(std::fs::metadata(p).unwrap().len(), want);
        }
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

    fn read(
        io: &IoEngine,
        layout: Erasure,
        paths: &[PathBuf],
        len: u64,
        r: std::ops::Range<u64>,
    ) -> Result<(Vec<u8>, ReadReport), ShardError> {
        read_range(io, layout, &open(paths), len, r).map(|(b, rep)| (b.to_vec(), rep))
    }

    #[test]
    fn survives_losses_and_corruption_and_rebuilds() {
        for io in engines() {
            let tmp = tempfile::tempdir().unwrap();
            let layout = Erasure::new(2, 2, 256 * 1024).unwrap();
            let data = object(700_001);
            let paths = write(&io, tmp.path(), layout, &data);
            let len = data.len() as u64;
            for r in ranges(len) {
                let (got, report) = read(&io, layout, &paths, len, r.clone()).unwrap();
                assert_eq!(got, &data[r.start as usize..r.end as usize], "healthy {r:?}");
                assert!(report.bad_shards.is_empty());
            }
            let pristine: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
            // Lose a data shard file and corrupt a byte of the other data shard: still exact.
            std::fs::remove_file(&paths[0]).unwrap();
            let mut bytes = std::fs::read(&paths[1]).unwrap();
            bytes[300_000] ^= 0x01;
            std::fs::write(&paths[1], &bytes).unwrap();
            for r in ranges(len) {
                let (got, _) = read(&io, layout, &paths, len, r.clone()).unwrap();
                assert_eq!(got, &data[r.start as usize..r.end as usize], "degraded {r:?}");
            }
            let (_, report) = read(&io, layout, &paths, len, 0..len).unwrap();
            assert_eq!(report.bad_shards, vec![0, 1]);
            // Rebuild both lost shards from the parity ones; they come back byte-identical.
            let out: Vec<PathBuf> = (0..2).map(|i| tmp.path().join(format!("rebuilt{i}"))).collect();
            let outs: Vec<File> = create(&out).into_iter().flatten().collect();
            rebuild(&io, layout, &open(&paths), len, &[0, 1], &outs, true).unwrap();
            assert_eq!(std::fs::read(&out[0]).unwrap(), pristine[0]);
            assert_eq!(std::fs::read(&out[1]).unwrap(), pristine[1]);
            // Truncate a parity shard too: three of four gone for some blocks → a clear error.
            let f = std::fs::OpenOptions::new().write(true).open(&paths[2]).unwrap();
            f.set_len(10).unwrap();
            let err = read(&io, layout, &paths, len, 0..len).unwrap_err();
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
    }

    #[test]
    fn write_quorum_is_enforced() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Erasure::new(2, 2, 64 * 1024).unwrap();
        let paths: Vec<PathBuf> = (0..4).map(|i| tmp.path().join(format!("s{i}"))).collect();
        let mut files = create(&paths);
        files[0] = None;
        // 2+2 needs 3 drives to write (k+1 when k == m): one offline is fine, two are not.
        let mut w = ShardWriter::new(layout, files).unwrap();
        w.write(&IoEngine::new(EngineKind::Std), b"abc").unwrap();
        let more: Vec<PathBuf> = paths.iter().map(|p| p.with_extension("b")).collect();
        let mut files = create(&more);
        files[0] = None;
        files[1] = None;
        assert!(matches!(
            ShardWriter::new(layout, files),
            Err(ShardError::WriteQuorum { ok: 2, total: 4, need: 3 })
        ));
    }

    #[test]
    fn healthy_reads_never_touch_parity() {
        for io in engines() {
            let tmp = tempfile::tempdir().unwrap();
            let layout = Erasure::new(4, 2, 1024 * 1024).unwrap();
            let data = object(3 * 1024 * 1024);
            let paths = write(&io, tmp.path(), layout, &data);
            // With parity files gone the healthy path must not need them.
            for p in &paths[4..] {
                std::fs::remove_file(p).unwrap();
            }
            let r = 1_500_000..1_504_096;
            let (got, report) = read(&io, layout, &paths, data.len() as u64, r.clone()).unwrap();
            assert_eq!(got, &data[r.start as usize..r.end as usize]);
            assert!(report.bad_shards.is_empty());
        }
    }
}
