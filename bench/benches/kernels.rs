//! Criterion benches of the storage kernels on the hot paths: erasure encode and
//! reconstruct at 1 MiB blocks, bitrot framing/verification, and the body hashing every PUT
//! does (MD5 for the ETag plus the default CRC64NVME checksum).
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

criterion_group!(benches, erasure, bitrot_and_hashing);
criterion_main!(benches);
