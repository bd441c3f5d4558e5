//! Criterion benches of the storage kernels on the hot paths: erasure encode and
//! reconstruct at 1 MiB blocks, bitrot framing/verification, the body hashing every PUT
//! does (MD5 for the ETag plus the default CRC64NVME checksum), and the two I/O engines
//! (io_uring and std) on 4 KiB random reads and 1 MiB sequential writes.
//!
//! `cargo bench -p quarry-bench --bench kernels`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quarry_storage::erasure::Erasure;
use quarry_storage::{BodyHasher, ChecksumAlgorithm, bitrot};
use std::hint::black_box;

const BLOCK: usize = 1 << 20;

fn block() -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn erasure(c: &mut Criterion) {
    let data = block();
    let mut g = c.benchmark_group("erasure_1MiB");
    g.throughput(Throughput::Bytes(BLOCK as u64));
    for (k, m) in [(2, 2), (4, 2), (8, 4), (12, 4)] {
        let e = Erasure::new(k, m, BLOCK).expect("valid layout");
        g.bench_with_input(BenchmarkId::new("encode", format!("{k}+{m}")), &data, |b, d| {
            b.iter(|| e.encode(black_box(d)).expect("encodes"))
        });
        let mut coder = quarry_storage::erasure::Coder::new(e);
        let mut buf = Vec::new();
        g.bench_with_input(BenchmarkId::new("encode_reused", format!("{k}+{m}")), &data, |b, d| {
            b.iter(|| coder.encode_into(black_box(d), &mut buf).expect("encodes"))
        });
        let shards = e.encode(&data).expect("encodes");
        // Healthy read: all data shards present, no decode.
        let healthy: Vec<Option<&[u8]>> = shards.iter().map(|s| Some(&s[..])).collect();
        g.bench_function(BenchmarkId::new("read_healthy", format!("{k}+{m}")), |b| {
            b.iter(|| e.decode(black_box(&healthy), BLOCK).expect("decodes"))
        });
        // Degraded read: the first m data shards lost.
        let degraded: Vec<Option<&[u8]>> = shards.iter().enumerate().map(|(i, s)| (i >= m).then_some(&s[..])).collect();
        g.bench_function(BenchmarkId::new("reconstruct", format!("{k}+{m}")), |b| {
            b.iter(|| e.decode(black_box(&degraded), BLOCK).expect("decodes"))
        });
    }
    g.finish();
}

fn bitrot_and_hashing(c: &mut Criterion) {
    let data = block();
    let mut g = c.benchmark_group("integrity_1MiB");
    g.throughput(Throughput::Bytes(BLOCK as u64));
    g.bench_function("bitrot_frame_crc64nvme", |b| b.iter(|| bitrot::frame(black_box(&data))));
    let framed = bitrot::frame(&data);
    g.bench_function("bitrot_verify_crc64nvme", |b| {
        b.iter(|| bitrot::unframe(black_box(&framed), 0).expect("verifies"))
    });
    g.bench_function("put_hash_md5_plus_crc64nvme", |b| {
        b.iter(|| {
            let mut h = BodyHasher::new(Some(ChecksumAlgorithm::Crc64Nvme));
            h.update(black_box(&data));
            h.finalize()
        })
    });
    g.bench_function("md5_only", |b| {
        b.iter(|| {
            let mut h = BodyHasher::new(None);
            h.update(black_box(&data));
            h.finalize()
        })
    });
    g.finish();
}

/// io_uring vs std: 4 KiB random reads from a 256 MiB file (page cache warm: the case of a
/// hot dataset), one at a time and 16 per batch (the shards of several blocks); 1 MiB
/// sequential writes to a fresh file, without and with an fdatasync per write.
fn io_engines(c: &mut Criterion) {
    use quarry_storage::io::{EngineKind, IoEngine, ReadOp, WriteOp};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("file");
    let size = 256u64 << 20;
    {
        let one = block();
        let mut f = std::fs::File::create(&path).expect("create");
        for _ in 0..size / BLOCK as u64 {
            std::io::Write::write_all(&mut f, &one).expect("write");
        }
    }
    let file = std::fs::File::open(&path).expect("open");
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % (size / 4096)) * 4096
    };
    let mut g = c.benchmark_group("io_4KiB_random_read");
    for kind in [EngineKind::Uring, EngineKind::Std] {
        let io = IoEngine::new(kind);
        for batch in [1usize, 16] {
            g.throughput(Throughput::Bytes(4096 * batch as u64));
            let mut bufs = vec![vec![0u8; 4096]; batch];
            g.bench_function(BenchmarkId::new(kind.as_str(), format!("batch{batch}")), |b| {
                b.iter(|| {
                    let mut ops: Vec<ReadOp> = bufs
                        .iter_mut()
                        .map(|buf| ReadOp {
                            file: &file,
                            offset: next(),
                            buf,
                        })
                        .collect();
                    for r in io.read_many(&mut ops) {
                        r.expect("read");
                    }
                })
            });
        }
    }
    g.finish();
    let data = block();
    let mut g = c.benchmark_group("io_1MiB_sequential_write");
    g.throughput(Throughput::Bytes(BLOCK as u64));
    for kind in [EngineKind::Uring, EngineKind::Std] {
        let io = IoEngine::new(kind);
        for sync in [false, true] {
            let out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.path().join(format!("w-{}-{sync}", kind.as_str())))
                .expect("create");
            let mut offset = 0u64;
            let name = if sync { "write+fdatasync" } else { "write" };
            g.bench_function(BenchmarkId::new(kind.as_str(), name), |b| {
                b.iter(|| {
                    // Wrap at 256 MiB so the file stays bounded.
                    if offset >= size {
                        offset = 0;
                    }
                    io.write_many(&[WriteOp {
                        file: &out,
                        offset,
                        data: &data,
                    }])[0]
                        .as_ref()
                        .expect("write");
                    if sync {
                        io.sync_many(&[&out])[0].as_ref().expect("sync");
                    }
                    offset += BLOCK as u64;
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, erasure, bitrot_and_hashing, io_engines);
criterion_main!(benches);
