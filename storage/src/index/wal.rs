//! The index's write-ahead log: how a commit becomes durable with one small write and one
//! flush (see `storage/FORMAT.md`, "The write-ahead log").
//!
//! A durable redb commit with quick repair is a two-phase commit that also saves the
//! allocator state: two flushes and tens of pages per commit. Instead, each group of
//! batches is one record appended to this log and flushed, then applied to redb without
//! a sync; a checkpoint (a durable redb commit) every [`CHECKPOINT_BYTES`] of log lets
//! the log start over. At open, the records past the checkpoint are applied again.
//!
//! - There are two log files. A checkpoint runs while commits go on: they are logged to
//!   the other file, which the previous checkpoint freed; the file the checkpoint covers
//!   is free once it ends. At open, the records past the checkpoint in both files are
//!   one run of sequences ([`chain`]).
//! - The file is zero-filled ahead of the records, in [`GROW`] steps, and reused from its
//!   start after each checkpoint: a flush then overwrites blocks the file already has,
//!   which on ext4 and XFS costs no journal commit (measured here: 0.17 ms per 4 KiB
//!   overwrite with `O_DSYNC` against 3.6 ms per append).
//! - A record: CRC32C (over the rest of the header and the payload), payload length
//!   (u32), sequence (u64), payload; little-endian. Sequences rise by one per record and
//!   redb holds the last one applied, in the same transaction as its changes. Replay
//!   takes records from the file's start while each is whole and follows the one before;
//!   a torn record, zeros, or an older cycle's record ends the log.
//! - Ops are blind writes (put, delete, delete range), so applying a record twice, in
//!   order, leaves what applying it once did.

use super::engine::{Op, Table};
use std::io;

/// Log bytes after which the index checkpoints (one durable redb commit) and the log
/// starts over: bounds replay at open and the log file's size (plus one group). 32 MiB
/// rather than 8: p99 of durable 4 KiB PUTs at c=16 7.1 ms against 29.9 ms, at the same
/// throughput (BENCHMARKS.md, 2026-12-02).
pub const CHECKPOINT_BYTES: u64 = 32 << 20;
/// The file grows (zero-filled, synced) in steps of this many bytes.
pub const GROW: u64 = 1 << 20;
const HEADER: usize = 16;

/// The few file operations the log needs; a real file, or a simulated disk in tests.
pub trait LogFile: Send + Sync + 'static {
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()>;
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    fn sync_data(&self) -> io::Result<()>;
}

impl LogFile for std::fs::File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, out, offset)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, data, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }
}

/// One record found at open: its sequence and its ops.
pub struct Record {
    pub seq: u64,
    pub ops: Vec<Op>,
}

pub struct Wal {
    file: Box<dyn LogFile>,
    /// Bytes the file has (zero-filled or records).
    len: u64,
    /// Where the next record goes.
    end: u64,
    /// The next record's sequence.
    next_seq: u64,
}

fn record_crc(rest_of_header: &[u8], payload: &[u8]) -> u32 {
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    d.update(rest_of_header);
    d.update(payload);
    d.finalize() as u32
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// The payload of one record: every op of every batch, in order.
pub fn encode(batches: &[&[Op]]) -> Vec<u8> {
    // Per op: kind, table and two length prefixes at most.
    let size: usize = batches.iter().flat_map(|b| b.iter()).map(|op| 10 + op.bytes()).sum();
    let mut out = Vec::with_capacity(size);
    for op in batches.iter().flat_map(|b| b.iter()) {
        match op {
            Op::Put(t, k, v) => {
                out.extend_from_slice(&[0, t.code()]);
                put_bytes(&mut out, k);
                put_bytes(&mut out, v);
            }
            Op::Delete(t, k) => {
                out.extend_from_slice(&[1, t.code()]);
                put_bytes(&mut out, k);
            }
            Op::DeleteRange(t, from, to) => {
                out.extend_from_slice(&[2, t.code()]);
                put_bytes(&mut out, from);
                put_bytes(&mut out, to);
            }
        }
    }
    out
}

/// The ops of a payload `encode` wrote; `None` when it does not parse (a record whose
/// checksum matched but whose layout is not ours: treated as the end of the log).
pub fn decode(mut p: &[u8]) -> Option<Vec<Op>> {
    fn bytes<'a>(p: &mut &'a [u8]) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(p.get(..4)?.try_into().ok()?) as usize;
        let b = p.get(4..4 + n)?;
        *p = &p[4 + n..];
        Some(b)
    }
    let mut ops = Vec::new();
    while !p.is_empty() {
        let (kind, table) = (*p.first()?, *Table::ALL.get(*p.get(1)? as usize)?);
        p = &p[2..];
        let a = bytes(&mut p)?.to_vec();
        ops.push(match kind {
            0 => Op::Put(table, a, bytes(&mut p)?.to_vec()),
            1 => Op::Delete(table, a),
            2 => Op::DeleteRange(table, a, bytes(&mut p)?.to_vec()),
            _ => return None,
        });
    }
    Some(ops)
}

impl Wal {
    /// Open a log file and read its records after `applied` (the last sequence the engine
    /// holds): the run of whole records from the file's start, each following the one
    /// before. Errors only when the file cannot be read; whether the records follow
    /// `applied` is for [`chain`] to say.
    pub fn open(file: Box<dyn LogFile>, applied: u64) -> io::Result<(Self, Vec<Record>)> {
        let len = file.size()?;
        let mut records = Vec::new();
        let mut at = 0u64;
        let mut prev: Option<u64> = None;
        let mut header = [0u8; HEADER];
        while at + HEADER as u64 <= len {
            file.read_at(at, &mut header)?;
            let crc = u32::from_le_bytes(header[0..4].try_into().expect("4"));
            let n = u32::from_le_bytes(header[4..8].try_into().expect("4")) as u64;
            let seq = u64::from_le_bytes(header[8..16].try_into().expect("8"));
            if seq == 0 || prev.is_some_and(|p| seq != p + 1) || at + HEADER as u64 + n > len {
                break;
            }
            let mut payload = vec![0u8; n as usize];
            file.read_at(at + HEADER as u64, &mut payload)?;
            if record_crc(&header[4..], &payload) != crc {
                break;
            }
            if seq > applied {
                let Some(ops) = decode(&payload) else { break };
                records.push(Record { seq, ops });
            }
            prev = Some(seq);
            at += HEADER as u64 + n;
        }
        let last = records.last().map_or(applied, |r| r.seq);
        let wal = Self {
            file,
            len,
            end: at,
            next_seq: last + 1,
        };
        Ok((wal, records))
    }

    /// The sequence the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Log bytes since the last checkpoint.
    pub fn bytes(&self) -> u64 {
        self.end
    }

    /// Write one record and flush it: when this returns `Ok`, the record survives a power
    /// loss. Its sequence is taken whether or not the write succeeds, so a record that
    /// may be half on disk is never followed by one that would make it look whole.
    pub fn append(&mut self, payload: &[u8]) -> io::Result<u64> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let n = u32::try_from(payload.len()).map_err(|_| io::Error::other("a write-ahead log record over 4 GiB"))?;
        let mut rec = Vec::with_capacity(HEADER + payload.len());
        rec.extend_from_slice(&[0; 4]);
        rec.extend_from_slice(&n.to_le_bytes());
        rec.extend_from_slice(&seq.to_le_bytes());
        rec.extend_from_slice(payload);
        let crc = record_crc(&rec[4..HEADER], payload);
        rec[0..4].copy_from_slice(&crc.to_le_bytes());
        let need = self.end + rec.len() as u64;
        if need > self.len {
            // Zero-fill, then sync, so the record's own flush below finds its blocks
            // allocated; a crash in between leaves zeros, which end the log.
            let grown = need.div_ceil(GROW) * GROW;
            let zeros = vec![0u8; (grown - self.len) as usize];
            self.file.write_at(self.len, &zeros)?;
            self.file.sync_data()?;
            self.len = grown;
        }
        self.file.write_at(self.end, &rec)?;
        self.file.sync_data()?;
        self.end = need;
        Ok(seq)
    }

    /// Start over at the file's start, the next record taking sequence `next_seq` (after
    /// a checkpoint, or when this file takes over from the other one).
    pub fn restart_at(&mut self, next_seq: u64) {
        self.end = 0;
        self.next_seq = next_seq;
    }
}

/// The records of both log files past `applied`, as one run of sequences from
/// `applied + 1`: the file holding the earlier ones first. An error when they do not
/// make one run (acknowledged commits were lost).
pub fn chain(applied: u64, a: Vec<Record>, b: Vec<Record>) -> io::Result<Vec<Record>> {
    let (mut first, second) = match (a.first(), b.first()) {
        (Some(x), Some(y)) if y.seq < x.seq => (b, a),
        (None, Some(_)) => (b, a),
        _ => (a, b),
    };
    let mut expect = applied + 1;
    for (i, part) in [&first, &second].into_iter().enumerate() {
        if let Some(r) = part.first()
            && r.seq != expect
        {
            return Err(io::Error::other(format!(
                "the write-ahead log's {} run starts at record {} where {expect} was due: records are missing",
                if i == 0 { "first" } else { "second" },
                r.seq
            )));
        }
        expect = part.last().map_or(expect, |r| r.seq + 1);
    }
    first.extend(second);
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Mem(Arc<Mutex<Vec<u8>>>);

    impl LogFile for Mem {
        fn size(&self) -> io::Result<u64> {
            Ok(self.0.lock().unwrap().len() as u64)
        }
        fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
            let d = self.0.lock().unwrap();
            out.copy_from_slice(&d[offset as usize..offset as usize + out.len()]);
            Ok(())
        }
        fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
            let mut d = self.0.lock().unwrap();
            let end = offset as usize + data.len();
            if d.len() < end {
                d.resize(end, 0);
            }
            d[offset as usize..end].copy_from_slice(data);
            Ok(())
        }
        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn ops(i: u8) -> Vec<Op> {
        vec![
            Op::Put(Table::Versions, vec![i; 3], vec![i; 40]),
            Op::Delete(Table::Current, vec![i]),
            Op::DeleteRange(Table::Inline, vec![i], vec![i, 9]),
        ]
    }

    #[test]
    fn records_round_trip_and_replay_after_the_applied_sequence() {
        let f = Mem::default();
        let (mut wal, found) = Wal::open(Box::new(f.clone()), 0).unwrap();
        assert!(found.is_empty());
        for i in 1..=5u8 {
            assert_eq!(wal.append(&encode(&[&ops(i)])).unwrap(), i as u64);
        }
        assert_eq!(f.size().unwrap(), GROW, "zero-filled ahead");
        let (_, found) = Wal::open(Box::new(f.clone()), 2).unwrap();
        assert_eq!(found.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(found[0].ops, ops(3));
    }

    #[test]
    fn a_torn_record_or_an_older_cycle_ends_the_log() {
        let f = Mem::default();
        let (mut wal, _) = Wal::open(Box::new(f.clone()), 0).unwrap();
        for i in 1..=4u8 {
            wal.append(&encode(&[&ops(i)])).unwrap();
        }
        // A checkpoint at 4, then one record over the start: the old 2..4 after it are
        // an older cycle's.
        wal.restart_at(5);
        wal.append(&encode(&[&ops(5)])).unwrap();
        let (_, found) = Wal::open(Box::new(f.clone()), 4).unwrap();
        assert_eq!(found.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5]);
        // A flipped byte in the payload of record 6 ends the log before it.
        let at = wal.bytes();
        wal.append(&encode(&[&ops(6)])).unwrap();
        f.0.lock().unwrap()[at as usize + HEADER + 3] ^= 1;
        let (mut wal, found) = Wal::open(Box::new(f.clone()), 4).unwrap();
        assert_eq!(found.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5]);
        assert_eq!(wal.next_seq(), 6);
        assert_eq!(wal.bytes(), at, "the next record overwrites the torn one");
        wal.append(&encode(&[&ops(7)])).unwrap();
        let (_, found) = Wal::open(Box::new(f.clone()), 4).unwrap();
        assert_eq!(found.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5, 6]);
    }

    #[test]
    fn records_past_a_gap_are_an_error() {
        // A log whose first record is 5 while the engine holds up to 1: 2..4 are lost.
        let f = Mem::default();
        let (mut wal, _) = Wal::open(Box::new(f.clone()), 4).unwrap();
        wal.append(&encode(&[&ops(5)])).unwrap();
        let found = |applied| Wal::open(Box::new(f.clone()), applied).unwrap().1;
        assert!(chain(1, found(1), Vec::new()).is_err());
        assert_eq!(chain(4, found(4), Vec::new()).unwrap()[0].seq, 5);
        assert!(chain(5, found(5), Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn two_files_chain_in_either_order_or_fail_at_a_gap() {
        let (fa, fb) = (Mem::default(), Mem::default());
        let (mut a, _) = Wal::open(Box::new(fa.clone()), 0).unwrap();
        for i in 1..=3u8 {
            a.append(&encode(&[&ops(i)])).unwrap();
        }
        // The second file takes over at 4 (a checkpoint of 1..3 running).
        let (mut b, _) = Wal::open(Box::new(fb.clone()), 0).unwrap();
        b.restart_at(a.next_seq());
        for i in 4..=5u8 {
            assert_eq!(b.append(&encode(&[&ops(i)])).unwrap(), i as u64);
        }
        let found = |f: &Mem, applied| Wal::open(Box::new(f.clone()), applied).unwrap().1;
        let seqs = |r: Vec<Record>| r.iter().map(|r| r.seq).collect::<Vec<_>>();
        // The checkpoint did not finish: both files replay, whichever is read first.
        assert_eq!(seqs(chain(0, found(&fb, 0), found(&fa, 0)).unwrap()), [1, 2, 3, 4, 5]);
        assert_eq!(seqs(chain(0, found(&fa, 0), found(&fb, 0)).unwrap()), [1, 2, 3, 4, 5]);
        // It finished: the first file's records are behind the engine.
        assert_eq!(seqs(chain(3, found(&fa, 3), found(&fb, 3)).unwrap()), [4, 5]);
        // The first file lost: a gap.
        assert!(chain(0, Vec::new(), found(&fb, 0)).is_err());
    }

    #[test]
    fn garbage_payload_with_a_matching_checksum_ends_the_log() {
        assert!(decode(&[7, 0, 0, 0, 0, 0]).is_none());
        assert!(decode(&[0, 200, 0, 0, 0, 0]).is_none());
        assert!(decode(&[0, 0, 9, 0, 0, 0]).is_none());
        assert_eq!(decode(&[]), Some(vec![]));
    }
}
