//! The I/O engines shard reads and writes go through.
//!
//! Both engines take a batch of positioned operations (the shard reads of one block, the
//! shard writes of one block, the fdatasyncs that end a PUT) and return when every one has
//! finished, so the buffers they touch are plain borrows. They are called from the
//! blocking pool's threads, which are the store's dedicated I/O threads.
//!
//! - [`EngineKind::Uring`]: each I/O thread owns an io_uring (created on first use); a batch
//!   becomes one submission of all its entries and the thread waits for their completions,
//!   so the reads of all shards of a block, or the writes to all drives, are in flight
//!   together and fdatasync runs through the ring (`IORING_FSYNC_DATASYNC`).
//! - [`EngineKind::Std`]: the same batch as a loop of `pread`/`pwrite`/`fdatasync` (the syncs
//!   of a batch on scoped threads, so drives sync in parallel). Chosen with `--io-engine
//!   std`, or automatically when the kernel refuses io_uring (seccomp, old kernels,
//!   `io_uring_disabled`).
//!
//! Both count the bytes they read, so read amplification can be measured.

use std::cell::RefCell;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which engine to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Uring,
    Std,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uring => "io_uring",
            Self::Std => "std",
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "uring" | "io_uring" | "io-uring" => Ok(Self::Uring),
            "std" => Ok(Self::Std),
            other => Err(format!("unknown I/O engine {other:?} (uring or std)")),
        }
    }
}

/// A positioned read filling `buf` completely (a short file is `UnexpectedEof`).
pub struct ReadOp<'a> {
    pub file: &'a File,
    pub offset: u64,
    pub buf: &'a mut [u8],
}

/// A positioned write of all of `data`.
pub struct WriteOp<'a> {
    pub file: &'a File,
    pub offset: u64,
    pub data: &'a [u8],
}

/// Bytes and operations an engine has read, for measuring read amplification.
#[derive(Debug, Default)]
pub struct IoStats {
    pub bytes_read: AtomicU64,
    pub reads: AtomicU64,
}

/// An I/O engine; cheap to clone.
#[derive(Clone, Debug)]
pub struct IoEngine {
    kind: EngineKind,
    stats: Arc<IoStats>,
}

const RING_ENTRIES: u32 = 64;

thread_local! {
    static RING: RefCell<Option<io_uring::IoUring>> = const { RefCell::new(None) };
}

impl IoEngine {
    /// The engine `wanted`, or std when io_uring is wanted but the kernel refuses it (the
    /// reason is logged). [`IoEngine::kind`] says which one is active.
    pub fn new(wanted: EngineKind) -> Self {
        let kind = match wanted {
            EngineKind::Uring => match io_uring::IoUring::new(RING_ENTRIES) {
                Ok(_) => EngineKind::Uring,
                Err(e) => {
                    tracing::warn!(error = %e, "io_uring is not available; using the std I/O engine");
                    EngineKind::Std
                }
            },
            EngineKind::Std => EngineKind::Std,
        };
        Self {
            kind,
            stats: Arc::default(),
        }
    }

    /// The active engine.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Counters of what this engine (and its clones) read.
    pub fn stats(&self) -> &IoStats {
        &self.stats
    }

    /// Run every read; one result per op, in order.
    pub fn read_many(&self, ops: &mut [ReadOp<'_>]) -> Vec<std::io::Result<()>> {
        let total: u64 = ops.iter().map(|o| o.buf.len() as u64).sum();
        self.stats.bytes_read.fetch_add(total, Ordering::Relaxed);
        self.stats.reads.fetch_add(ops.len() as u64, Ordering::Relaxed);
        match self.kind {
            EngineKind::Std => ops.iter_mut().map(|o| o.file.read_exact_at(o.buf, o.offset)).collect(),
            EngineKind::Uring => {
                let mut pending: Vec<Pending> = ops
                    .iter_mut()
                    .map(|o| Pending {
                        fd: o.file.as_raw_fd(),
                        op: Op::Read,
                        ptr: o.buf.as_mut_ptr(),
                        len: o.buf.len(),
                        offset: o.offset,
                        done: 0,
                    })
                    .collect();
                // SAFETY: every pointer is into a buffer borrowed mutably by `ops` for the
                // length of this call, and `with_ring` returns only after the kernel has
                // completed every entry it was given.
                unsafe { with_ring(&mut pending) }
            }
        }
    }

    /// Run every write; one result per op, in order.
    pub fn write_many(&self, ops: &[WriteOp<'_>]) -> Vec<std::io::Result<()>> {
        match self.kind {
            EngineKind::Std => ops.iter().map(|o| o.file.write_all_at(o.data, o.offset)).collect(),
            EngineKind::Uring => {
                let mut pending: Vec<Pending> = ops
                    .iter()
                    .map(|o| Pending {
                        fd: o.file.as_raw_fd(),
                        op: Op::Write,
                        ptr: o.data.as_ptr().cast_mut(),
                        len: o.data.len(),
                        offset: o.offset,
                        done: 0,
                    })
                    .collect();
                // SAFETY: as in `read_many`; the kernel only reads through these pointers.
                unsafe { with_ring(&mut pending) }
            }
        }
    }

    /// fdatasync every file; one result per file, in order.
    pub fn sync_many(&self, files: &[&File]) -> Vec<std::io::Result<()>> {
        match self.kind {
            EngineKind::Std if files.len() > 1 => std::thread::scope(|s| {
                let handles: Vec<_> = files.iter().map(|f| s.spawn(move || f.sync_data())).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(std::io::Error::other("fdatasync thread panicked"))))
                    .collect()
            }),
            EngineKind::Std => files.iter().map(|f| f.sync_data()).collect(),
            EngineKind::Uring => {
                let mut pending: Vec<Pending> = files
                    .iter()
                    .map(|f| Pending {
                        fd: f.as_raw_fd(),
                        op: Op::Sync,
                        ptr: std::ptr::null_mut(),
                        len: 0,
                        offset: 0,
                        done: 0,
                    })
                    .collect();
                // SAFETY: fsync entries carry no buffers; the files outlive the call.
                unsafe { with_ring(&mut pending) }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Sync,
}

struct Pending {
    fd: std::os::fd::RawFd,
    op: Op,
    ptr: *mut u8,
    len: usize,
    offset: u64,
    done: usize,
}

impl Pending {
    fn entry(&self, index: usize) -> io_uring::squeue::Entry {
        use io_uring::{opcode, types};
        let fd = types::Fd(self.fd);
        // Shard I/O is at most a few MiB per op; anything larger is cut and resubmitted.
        let left = u32::try_from(self.len - self.done).unwrap_or(u32::MAX);
        // SAFETY (pointer arithmetic): `done <= len`, so the pointer stays inside the buffer.
        let at = unsafe { self.ptr.add(self.done) };
        let off = self.offset + self.done as u64;
        let e = match self.op {
            Op::Read => opcode::Read::new(fd, at, left).offset(off).build(),
            Op::Write => opcode::Write::new(fd, at, left).offset(off).build(),
            Op::Sync => opcode::Fsync::new(fd).flags(types::FsyncFlags::DATASYNC).build(),
        };
        e.user_data(index as u64)
    }
}

/// Submit every op on this thread's ring and wait for all of them, resubmitting short
/// transfers and interrupted ops.
///
/// # Safety
/// Every `ptr` must be valid for `len` bytes (writable for reads) until this returns.
unsafe fn with_ring(ops: &mut [Pending]) -> Vec<std::io::Result<()>> {
    RING.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            match io_uring::IoUring::new(RING_ENTRIES) {
                Ok(r) => *slot = Some(r),
                Err(e) => {
                    return ops.iter().map(|_| Err(std::io::Error::new(e.kind(), e.to_string()))).collect();
                }
            }
        }
        let ring = slot.as_mut().expect("ring was just created");
        run(ring, ops)
    })
}

fn run(ring: &mut io_uring::IoUring, ops: &mut [Pending]) -> Vec<std::io::Result<()>> {
    let mut results: Vec<Option<std::io::Result<()>>> = (0..ops.len()).map(|_| None).collect();
    let mut queue: std::collections::VecDeque<usize> = (0..ops.len()).collect();
    let mut inflight = 0usize;
    loop {
        {
            let mut sq = ring.submission();
            while let Some(&i) = queue.front() {
                let entry = ops[i].entry(i);
                // SAFETY: the entry's buffer is valid until this function returns (caller's
                // contract), and we do not return while any entry is in flight.
                if unsafe { sq.push(&entry) }.is_err() {
                    break;
                }
                queue.pop_front();
                inflight += 1;
            }
        }
        if inflight == 0 {
            break;
        }
        loop {
            match ring.submit_and_wait(1) {
                Ok(_) => break,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY)) => {
                    std::thread::yield_now();
                }
                Err(e) => {
                    // Entries may be in the kernel's hands with pointers into the caller's
                    // buffers; returning would let those buffers be freed under it.
                    tracing::error!(error = %e, "io_uring submission failed with I/O in flight; aborting");
                    std::process::abort();
                }
            }
        }
        for cqe in ring.completion() {
            let i = cqe.user_data() as usize;
            inflight -= 1;
            let res = cqe.result();
            let op = &mut ops[i];
            if res < 0 {
                let err = std::io::Error::from_raw_os_error(-res);
                if matches!(-res, libc::EINTR | libc::EAGAIN) {
                    queue.push_back(i);
                } else {
                    results[i] = Some(Err(err));
                }
                continue;
            }
            if op.op == Op::Sync {
                results[i] = Some(Ok(()));
                continue;
            }
            if res == 0 {
                let kind = if op.op == Op::Read {
                    std::io::ErrorKind::UnexpectedEof
                } else {
                    std::io::ErrorKind::WriteZero
                };
                results[i] = Some(Err(std::io::Error::from(kind)));
                continue;
            }
            op.done += res as usize;
            if op.done < op.len {
                queue.push_back(i);
            } else {
                results[i] = Some(Ok(()));
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(std::io::Error::other("operation was never completed"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn engines() -> Vec<IoEngine> {
        vec![IoEngine::new(EngineKind::Std), IoEngine::new(EngineKind::Uring)]
    }

    #[test]
    fn reads_writes_and_syncs_agree_across_engines() {
        for io in engines() {
            let tmp = tempfile::tempdir().unwrap();
            let files: Vec<File> = (0..5)
                .map(|i| {
                    std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .open(tmp.path().join(format!("f{i}")))
                        .unwrap()
                })
                .collect();
            // 130 ops on 5 files: more than the ring holds at once, so it refills.
            let data: Vec<Vec<u8>> = (0..130u32).map(|i| vec![i as u8; 4096 + i as usize]).collect();
            let mut offsets = [0u64; 5];
            let mut writes = Vec::new();
            let mut placed = Vec::new();
            for (i, d) in data.iter().enumerate() {
                let f = i % 5;
                writes.push(WriteOp {
                    file: &files[f],
                    offset: offsets[f],
                    data: d,
                });
                placed.push((f, offsets[f]));
                offsets[f] += d.len() as u64;
            }
            assert!(io.write_many(&writes).iter().all(Result::is_ok), "{:?}", io.kind());
            let refs: Vec<&File> = files.iter().collect();
            assert!(io.sync_many(&refs).iter().all(Result::is_ok));
            let mut bufs: Vec<Vec<u8>> = data.iter().map(|d| vec![0u8; d.len()]).collect();
            let mut reads: Vec<ReadOp> = bufs
                .iter_mut()
                .zip(&placed)
                .map(|(b, (f, off))| ReadOp {
                    file: &files[*f],
                    offset: *off,
                    buf: b,
                })
                .collect();
            assert!(io.read_many(&mut reads).iter().all(Result::is_ok));
            assert_eq!(bufs, data, "{:?}", io.kind());
            // Reading past the end is an error for that op only.
            let mut short = [0u8; 16];
            let mut fine = [0u8; 16];
            let mut ops = [
                ReadOp {
                    file: &files[0],
                    offset: offsets[0] - 8,
                    buf: &mut short,
                },
                ReadOp {
                    file: &files[1],
                    offset: 0,
                    buf: &mut fine,
                },
            ];
            let res = io.read_many(&mut ops);
            assert_eq!(res[0].as_ref().unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
            assert!(res[1].is_ok());
            assert!(io.stats().bytes_read.load(Ordering::Relaxed) > 0);
        }
    }

    #[test]
    fn closed_descriptor_is_an_error_not_a_crash() {
        for io in engines() {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("ro");
            std::fs::File::create(&path).unwrap().write_all(b"abc").unwrap();
            let ro = File::open(&path).unwrap();
            // Writing through a read-only descriptor fails with EBADF on both engines.
            let res = io.write_many(&[WriteOp {
                file: &ro,
                offset: 0,
                data: b"x",
            }]);
            assert!(res[0].is_err(), "{:?}", io.kind());
        }
    }
}
