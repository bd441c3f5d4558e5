//! Training shards: WebDataset-style tar files and TFRecord files of binary samples with
//! integer labels, the inputs of PyTorch and TensorFlow data loaders.
//!
//! Sample `j` of shard `s` has key `{s:05}{j:06}`, `sample_size` random bytes and a label in
//! 0..1000. In a tar shard it is two members, `<key>.bin` and `<key>.cls` (the label as
//! text). In a TFRecord shard it is one `tf.train.Example` with features `image` (bytes)
//! and `label` (int64), framed with masked CRC32C as TensorFlow writes them.

use crate::rng::Rng;
use std::io::Write;

/// One sample.
pub struct Sample {
    pub key: String,
    pub data: Vec<u8>,
    pub label: u64,
}

/// Sample `j` of shard `s`.
pub fn sample(seed: u64, s: u64, j: u64, sample_size: usize) -> Sample {
    let mut r = Rng::stream(seed, (s << 32) | j);
    let mut data = vec![0u8; sample_size];
    r.fill(&mut data);
    Sample {
        key: format!("{s:05}{j:06}"),
        data,
        label: r.range(0, 999),
    }
}

fn tar_header(name: &str, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    // A fixed mtime keeps shards byte-identical across runs.
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn tar_member(w: &mut impl Write, name: &str, data: &[u8]) -> std::io::Result<()> {
    w.write_all(&tar_header(name, data.len() as u64))?;
    w.write_all(data)?;
    let pad = (512 - data.len() % 512) % 512;
    w.write_all(&[0u8; 512][..pad])
}

/// Shard `s` as a WebDataset tar.
pub fn write_tar(seed: u64, s: u64, samples: u64, sample_size: usize, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    for j in 0..samples {
        let smp = sample(seed, s, j, sample_size);
        tar_member(&mut w, &format!("{}.bin", smp.key), &smp.data)?;
        tar_member(&mut w, &format!("{}.cls", smp.key), smp.label.to_string().as_bytes())?;
    }
    w.write_all(&[0u8; 1024])?;
    w.flush()
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    varint(out, u64::from(number << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A `tf.train.Example` with `image` (bytes) and `label` (int64), protobuf-encoded.
pub fn example(image: &[u8], label: u64) -> Vec<u8> {
    let entry = |name: &str, feature: Vec<u8>| {
        let mut e = Vec::new();
        field(&mut e, 1, name.as_bytes());
        field(&mut e, 2, &feature);
        e
    };
    let mut bytes_list = Vec::new();
    field(&mut bytes_list, 1, image);
    let mut image_feature = Vec::new();
    field(&mut image_feature, 1, &bytes_list);
    let mut packed = Vec::new();
    varint(&mut packed, label);
    let mut int64_list = Vec::new();
    field(&mut int64_list, 1, &packed);
    let mut label_feature = Vec::new();
    field(&mut label_feature, 3, &int64_list);
    let mut features = Vec::new();
    field(&mut features, 1, &entry("image", image_feature));
    field(&mut features, 1, &entry("label", label_feature));
    let mut ex = Vec::new();
    field(&mut ex, 1, &features);
    ex
}

/// TFRecord's masked CRC32C.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32;
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Shard `s` as a TFRecord file.
pub fn write_tfrecord(seed: u64, s: u64, samples: u64, sample_size: usize, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    for j in 0..samples {
        let smp = sample(seed, s, j, sample_size);
        let rec = example(&smp.data, smp.label);
        let len = (rec.len() as u64).to_le_bytes();
        w.write_all(&len)?;
        w.write_all(&masked_crc(&len).to_le_bytes())?;
        w.write_all(&rec)?;
        w.write_all(&masked_crc(&rec).to_le_bytes())?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_layout() {
        let mut out = Vec::new();
        write_tar(1, 0, 3, 1000, &mut out).unwrap();
        // 3 samples × (header + 1024 padded data + header + 512 padded label) + 1024 end.
        assert_eq!(out.len(), 3 * (512 + 1024 + 512 + 512) + 1024);
        assert_eq!(&out[..14], b"00000000000.bi");
        assert_eq!(&out[257..262], b"ustar");
    }

    #[test]
    fn tfrecord_framing() {
        let mut out = Vec::new();
        write_tfrecord(1, 2, 2, 100, &mut out).unwrap();
        let len = u64::from_le_bytes(out[..8].try_into().unwrap()) as usize;
        assert_eq!(u32::from_le_bytes(out[8..12].try_into().unwrap()), masked_crc(&out[..8]));
        let rec = &out[12..12 + len];
        assert_eq!(u32::from_le_bytes(out[12 + len..16 + len].try_into().unwrap()), masked_crc(rec));
        assert_eq!(out.len(), 2 * (16 + len));
    }
}
