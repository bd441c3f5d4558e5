//! Reed-Solomon erasure coding of object blocks across drives (`reed-solomon-simd`).
//!
//! An object is cut into blocks of `block_size` bytes (the last may be shorter). Each block
//! is split into `data` equal shards (zero-padded to an even length, as the codec requires)
//! and `parity` recovery shards are computed from them. The code is systematic: the data
//! shards are the block's bytes, so a healthy read concatenates them and never decodes.
//! Any `data` of the `data + parity` shards rebuild the block.
//!
//! Pure functions over caller-owned buffers: no I/O, no async.

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

/// Errors of the codec.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ErasureError {
    #[error("an erasure set needs 1 to 16 drives and fewer parity than data shards (got {data}+{parity})")]
    Layout { data: usize, parity: usize },
    #[error("block of {len} bytes is larger than the {block_size}-byte block size")]
    BlockTooLarge { len: usize, block_size: usize },
    #[error("only {have} of the {need} shards needed to rebuild the block are available")]
    TooFewShards { have: usize, need: usize },
    #[error("shard {index} is {got} bytes, expected {want}")]
    ShardSize { index: usize, got: usize, want: usize },
    #[error("reed-solomon: {0}")]
    Codec(String),
}

/// The parity shard count for a set of `drives`, growing with the set: 0 for one drive,
/// 1 for 2-3, 2 for 4-5, 3 for 6-7, 4 for 8-16.
pub fn default_parity(drives: usize) -> usize {
    match drives {
        0 | 1 => 0,
        2 | 3 => 1,
        4 | 5 => 2,
        6 | 7 => 3,
        _ => 4,
    }
}

/// A `data + parity` layout with a block size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erasure {
    data: usize,
    parity: usize,
    block_size: usize,
}

impl Erasure {
    /// A layout of `data` data shards and `parity` parity shards over blocks of `block_size`.
    pub fn new(data: usize, parity: usize, block_size: usize) -> Result<Self, ErasureError> {
        let drives = data + parity;
        if data == 0 || drives > 16 || parity > data || block_size == 0 {
            return Err(ErasureError::Layout { data, parity });
        }
        Ok(Self { data, parity, block_size })
    }

    /// Data shards per block.
    pub fn data(&self) -> usize {
        self.data
    }

    /// Parity shards per block.
    pub fn parity(&self) -> usize {
        self.parity
    }

    /// Bytes per block (before splitting).
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Bytes each shard holds for a block of `len` bytes: `ceil(len / data)` rounded up to
    /// an even number (0 for an empty block).
    pub fn shard_len(&self, len: usize) -> usize {
        let s = len.div_ceil(self.data);
        s + (s & 1)
    }

    /// Bytes one shard file holds for an object of `size` bytes (before bitrot framing).
    pub fn shard_file_len(&self, size: u64) -> u64 {
        let full = size / self.block_size as u64;
        let rest = (size % self.block_size as u64) as usize;
        full * self.shard_len(self.block_size) as u64 + self.shard_len(rest) as u64
    }

    /// Split `block` into `data + parity` shards of equal length (a one-off; a stream of
    /// blocks should use a [`Coder`], which reuses its encoder and buffers).
    pub fn encode(&self, block: &[u8]) -> Result<Vec<Vec<u8>>, ErasureError> {
        let mut out = Vec::new();
        Coder::new(*self).encode_into(block, &mut out)?;
        Ok(out)
    }

    /// Rebuild the `len`-byte block from whatever shards survive (`None` = lost or corrupt).
    /// With every data shard present this only concatenates; otherwise it decodes.
    pub fn decode(&self, shards: &[Option<&[u8]>], len: usize) -> Result<Vec<u8>, ErasureError> {
        let s = self.shard_len(len);
        let total = self.data + self.parity;
        let have = shards.iter().take(total).filter(|x| x.is_some()).count();
        if shards.len() != total || have < self.data {
            return Err(ErasureError::TooFewShards { have, need: self.data });
        }
        for (index, sh) in shards.iter().enumerate() {
            if let Some(sh) = sh
                && sh.len() != s
            {
                return Err(ErasureError::ShardSize {
                    index,
                    got: sh.len(),
                    want: s,
                });
            }
        }
        if s == 0 {
            return Ok(Vec::new());
        }
        let mut block = Vec::with_capacity(self.data * s);
        if shards[..self.data].iter().all(Option::is_some) {
            for sh in shards[..self.data].iter().flatten() {
                block.extend_from_slice(sh);
            }
            block.truncate(len);
            return Ok(block);
        }
        let restored = self.restore(shards, s)?;
        for (i, sh) in shards[..self.data].iter().enumerate() {
            match sh {
                Some(sh) => block.extend_from_slice(sh),
                None => block.extend_from_slice(
                    restored[i]
                        .as_deref()
                        .ok_or_else(|| ErasureError::Codec(format!("shard {i} was not restored")))?,
                ),
            }
        }
        block.truncate(len);
        Ok(block)
    }
}

impl Erasure {
    /// Rebuild data shard `want` from equal slices of the shards (`None` = lost): the same
    /// column range `[c0, c1)` of every shard of a block, with `c0` a multiple of 64 and
    /// `c1` a multiple of 64 or the shard's end. Reed-Solomon works column by column (in
    /// 64-byte groups in this codec), so a small degraded read decodes only what it covers
    /// instead of the whole block.
    pub fn decode_columns(&self, shards: &[Option<&[u8]>], want: usize) -> Result<Vec<u8>, ErasureError> {
        let total = self.data + self.parity;
        let have = shards.iter().filter(|x| x.is_some()).count();
        if shards.len() != total || have < self.data || want >= self.data {
            return Err(ErasureError::TooFewShards { have, need: self.data });
        }
        if let Some(Some(sh)) = shards.get(want) {
            return Ok(sh.to_vec());
        }
        let len = shards.iter().flatten().next().map_or(0, |s| s.len());
        if let Some((index, sh)) = shards
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.filter(|s| s.len() != len).map(|s| (i, s)))
        {
            return Err(ErasureError::ShardSize {
                index,
                got: sh.len(),
                want: len,
            });
        }
        let mut restored = self.restore(shards, len)?;
        restored[want]
            .take()
            .ok_or_else(|| ErasureError::Codec(format!("shard {want} was not restored")))
    }

    /// Run the Reed-Solomon decoder over shards of `len` bytes; the data shards it restored
    /// (the lost ones), by index.
    fn restore(&self, shards: &[Option<&[u8]>], len: usize) -> Result<Vec<Option<Vec<u8>>>, ErasureError> {
        let codec = |e: reed_solomon_simd::Error| ErasureError::Codec(e.to_string());
        let mut dec = ReedSolomonDecoder::new(self.data, self.parity, len).map_err(codec)?;
        for (i, sh) in shards.iter().enumerate() {
            match sh {
                Some(sh) if i < self.data => dec.add_original_shard(i, sh).map_err(codec)?,
                Some(sh) => dec.add_recovery_shard(i - self.data, sh).map_err(codec)?,
                None => {}
            }
        }
        let restored = dec.decode().map_err(codec)?;
        Ok((0..self.data).map(|i| restored.restored_original(i).map(<[u8]>::to_vec)).collect())
    }
}

/// Encodes a stream of blocks, keeping one Reed-Solomon encoder (its tables and work
/// space) and the caller's shard buffers across blocks.
pub struct Coder {
    layout: Erasure,
    encoder: Option<(usize, ReedSolomonEncoder)>,
}

impl Coder {
    /// A coder for `layout`.
    pub fn new(layout: Erasure) -> Self {
        Self { layout, encoder: None }
    }

    /// Encode `block` into `shards` (resized to `data + parity` shards of equal length).
    pub fn encode_into(&mut self, block: &[u8], shards: &mut Vec<Vec<u8>>) -> Result<(), ErasureError> {
        let e = self.layout;
        if block.len() > e.block_size {
            return Err(ErasureError::BlockTooLarge {
                len: block.len(),
                block_size: e.block_size,
            });
        }
        let s = e.shard_len(block.len());
        shards.resize_with(e.data + e.parity, Vec::new);
        for (i, sh) in shards.iter_mut().enumerate().take(e.data) {
            let start = (i * s).min(block.len());
            let end = ((i + 1) * s).min(block.len());
            sh.clear();
            sh.extend_from_slice(&block[start..end]);
            sh.resize(s, 0);
        }
        if e.parity == 0 || s == 0 {
            for sh in &mut shards[e.data..] {
                sh.clear();
                sh.resize(s, 0);
            }
            return Ok(());
        }
        let codec = |err: reed_solomon_simd::Error| ErasureError::Codec(err.to_string());
        let enc = match &mut self.encoder {
            Some((size, enc)) if *size == s => enc,
            slot => {
                let enc = match slot.take() {
                    Some((_, mut enc)) => {
                        enc.reset(e.data, e.parity, s).map_err(codec)?;
                        enc
                    }
                    None => ReedSolomonEncoder::new(e.data, e.parity, s).map_err(codec)?,
                };
                &mut slot.insert((s, enc)).1
            }
        };
        for sh in &shards[..e.data] {
            enc.add_original_shard(sh).map_err(codec)?;
        }
        let result = enc.encode().map_err(codec)?;
        for (dst, src) in shards[e.data..].iter_mut().zip(result.recovery_iter()) {
            dst.clear();
            dst.extend_from_slice(src);
        }
        Ok(())
    }
}

#[cfg(test)]
mod column_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn column_ranges_decode_like_whole_blocks(len in 2usize..300_000, k in 1usize..6, m in 1usize..4, a in 0usize..10_000, w in 1usize..5_000, lost_seed: u64) {
            prop_assume!(m <= k);
            let e = Erasure::new(k, m, 1 << 20).unwrap();
            let block: Vec<u8> = (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8).collect();
            let shards = e.encode(&block).unwrap();
            let s = shards[0].len();
            let c0 = (a % s) / 64 * 64;
            let c1 = (c0 + w).div_ceil(64).saturating_mul(64).min(s).max(c0 + 2).min(s);
            prop_assume!(c1 > c0);
            // Lose up to m shards, chosen by the seed.
            let mut lost = vec![false; k + m];
            let mut x = lost_seed | 1;
            for _ in 0..m {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                lost[(x % (k + m) as u64) as usize] = true;
            }
            let cols: Vec<Option<&[u8]>> = shards.iter().zip(&lost).map(|(sh, l)| (!l).then(|| &sh[c0..c1])).collect();
            for (want, shard) in shards.iter().enumerate().take(k) {
                let got = e.decode_columns(&cols, want).unwrap();
                prop_assert_eq!(&got[..], &shard[c0..c1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layouts() {
        assert!(Erasure::new(2, 2, 1 << 20).is_ok());
        assert!(Erasure::new(1, 0, 1 << 20).is_ok());
        assert!(Erasure::new(8, 4, 1 << 20).is_ok());
        assert!(Erasure::new(12, 4, 1 << 20).is_ok());
        assert!(Erasure::new(0, 1, 1).is_err());
        assert!(Erasure::new(2, 3, 1).is_err());
        assert!(Erasure::new(13, 4, 1).is_err());
        assert_eq!(
            (1..=16).map(default_parity).collect::<Vec<_>>(),
            [0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4]
        );
    }

    #[test]
    fn healthy_data_shards_are_the_block() {
        let e = Erasure::new(4, 2, 1024).unwrap();
        let block: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let shards = e.encode(&block).unwrap();
        assert_eq!(shards.len(), 6);
        let s = e.shard_len(1000);
        assert_eq!(&shards[0][..], &block[..s]);
        assert_eq!(e.shard_file_len(2500), 2 * e.shard_len(1024) as u64 + e.shard_len(452) as u64);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_data_shards_rebuild_the_block(
            (data, parity) in (1usize..=12).prop_flat_map(|d| (Just(d), 0usize..=4.min(16 - d))).prop_filter("valid", |(d, p)| Erasure::new(*d, *p, 1).is_ok()),
            len in 0usize..5000,
            seed: u64,
            lost_mask: u32,
        ) {
            let e = Erasure::new(data, parity, 8192).unwrap();
            let mut x = seed | 1;
            let block: Vec<u8> = (0..len).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as u8 }).collect();
            let shards = e.encode(&block).unwrap();
            // Lose up to `parity` shards, chosen by the mask.
            let total = data + parity;
            let mut lost = 0;
            let avail: Vec<Option<&[u8]>> = (0..total).map(|i| {
                if lost < parity && lost_mask & (1 << i) != 0 { lost += 1; None } else { Some(&shards[i][..]) }
            }).collect();
            prop_assert_eq!(e.decode(&avail, len).unwrap(), block.clone());
            // A reused coder gives the same shards, across block sizes.
            let mut coder = Coder::new(e);
            let mut buf = Vec::new();
            coder.encode_into(&block[..len / 2], &mut buf).unwrap();
            coder.encode_into(&block, &mut buf).unwrap();
            prop_assert_eq!(&buf, &shards);
            // One more loss than parity can repair is a clear error.
            if parity < total {
                let too_few: Vec<Option<&[u8]>> = (0..total).map(|i| if i <= parity { None } else { Some(&shards[i][..]) }).collect();
                let too_few_ok = matches!(e.decode(&too_few, len), Err(ErasureError::TooFewShards { .. }));
                prop_assert!(too_few_ok, "decoding with one shard too few must fail clearly");
            }
        }
    }
}
