//! `quarry-datasets`: deterministic data for Quarry's benchmarks and tests.
//!
//! Everything here is a pure function of a seed: the same seed gives the same bytes on every
//! machine, so a benchmark run here and one run elsewhere read identical inputs, and test
//! fixtures are generated rather than committed. Today it holds the seeded generator and a
//! TPC-H-like `lineitem` CSV; JSON, Parquet and training-shard generators arrive with the
//! benchmarks issue.
//!
//! ```
//! let a = quarry_datasets::lineitem_csv(42, 100);
//! let b = quarry_datasets::lineitem_csv(42, 100);
//! assert_eq!(a, b);
//! assert_eq!(a.lines().count(), 101); // header + rows
//! ```

/// SplitMix64: tiny, fast, and fully specified, so its output never changes across versions.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Fill `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

const FLAGS: [&str; 3] = ["A", "N", "R"];
const MODES: [&str; 7] = ["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"];

/// `rows` rows of a TPC-H-like `lineitem` table as CSV with a header line.
pub fn lineitem_csv(seed: u64, rows: usize) -> String {
    use std::fmt::Write as _;
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(rows * 96 + 128);
    out.push_str("l_orderkey,l_partkey,l_suppkey,l_linenumber,l_quantity,l_extendedprice,l_discount,l_tax,l_returnflag,l_shipdate,l_shipmode,l_comment\n");
    for i in 0..rows {
        let qty = rng.range(1, 50);
        let price = rng.range(90_000, 10_500_000) as f64 / 100.0;
        let day = rng.range(0, 2525);
        let (y, m, d) = (1992 + day / 365, 1 + (day % 365) / 31 % 12, 1 + day % 28);
        let _ = writeln!(
            out,
            "{},{},{},{},{qty},{price:.2},0.{:02},0.{:02},{},{y:04}-{m:02}-{d:02},{},\"item {i}, note {}\"",
            i / 4 + 1,
            rng.range(1, 200_000),
            rng.range(1, 10_000),
            i % 4 + 1,
            rng.range(0, 10),
            rng.range(0, 8),
            FLAGS[(rng.next_u64() % 3) as usize],
            MODES[(rng.next_u64() % 7) as usize],
            rng.next_u64() % 1000,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_known_prefix() {
        assert_eq!(lineitem_csv(7, 500), lineitem_csv(7, 500));
        assert_ne!(lineitem_csv(7, 500), lineitem_csv(8, 500));
        // SplitMix64's published first output for seed 0.
        assert_eq!(Rng::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn rows_have_every_column() {
        let csv = lineitem_csv(1, 50);
        for line in csv.lines().skip(1) {
            let (head, _comment) = line.split_once(",\"").unwrap();
            assert_eq!(head.split(',').count(), 11, "{line}");
        }
    }
}
