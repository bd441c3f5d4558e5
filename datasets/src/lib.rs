//! `quarry-datasets`: deterministic data for Quarry's benchmarks and tests.
//!
//! Everything is a pure function of a seed: the same seed gives the same bytes on every
//! machine, so benchmark inputs are identical wherever they run and test fixtures are
//! generated rather than committed. Rows, events and samples are each derived from
//! `(seed, index)` alone, so any slice of a dataset can be produced independently.
//!
//! - [`lineitem`]: a TPC-H-like table as CSV, JSON lines or Parquet (row groups, statistics).
//! - [`events`]: nested JSON event logs (lines or one document).
//! - [`shards`]: WebDataset tar and TFRecord training shards.
//! - [`Plan`]: a dataset split into named files, as the CLI and `quarry-bench` write them.
//! - [`s3`] and [`sigv4`]: a small, fast S3 client (keep-alive HTTP/1.1, SigV4) used to
//!   upload datasets and, by `quarry-bench`, to drive load.
//!
//! ```
//! use quarry_datasets::{Format, Kind, Plan};
//! let plan = Plan { kind: Kind::Lineitem, format: Format::Csv, rows: 100, files: 2, ..Plan::default() };
//! assert_eq!(plan.file_names(), ["lineitem/part-00000.csv", "lineitem/part-00001.csv"]);
//! assert_eq!(plan.render(1).unwrap(), plan.render(1).unwrap());
//! ```

pub mod events;
pub mod lineitem;
pub mod rng;
pub mod s3;
pub mod shards;
pub mod sigv4;

pub use rng::Rng;

/// Which dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Lineitem,
    Events,
    Shards,
}

/// How it is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
    /// One JSON document per file (`events` only).
    Document,
    Tar,
    Tfrecord,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Parquet => "parquet",
            Self::Document => "json",
            Self::Tar => "tar",
            Self::Tfrecord => "tfrecord",
        }
    }
}

/// A generation error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0:?} cannot be written as {1:?}")]
    Unsupported(Kind, Format),
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// A dataset split into files.
#[derive(Clone, Debug)]
pub struct Plan {
    pub kind: Kind,
    pub format: Format,
    pub seed: u64,
    /// Rows (lineitem), events, or samples per shard (shards).
    pub rows: u64,
    /// Files (or shards) to split into.
    pub files: u64,
    /// Parquet row group size.
    pub row_group_rows: u64,
    /// Bytes per training sample.
    pub sample_size: usize,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            kind: Kind::Lineitem,
            format: Format::Csv,
            seed: 42,
            rows: 10_000,
            files: 1,
            row_group_rows: 1 << 17,
            sample_size: 100 * 1024,
        }
    }
}

impl Plan {
    /// Object names (relative paths), one per file.
    pub fn file_names(&self) -> Vec<String> {
        let (dir, stem) = match self.kind {
            Kind::Lineitem => ("lineitem", "part"),
            Kind::Events => ("events", "part"),
            Kind::Shards => ("shards", "shard"),
        };
        (0..self.files)
            .map(|i| format!("{dir}/{stem}-{i:05}.{}", self.format.extension()))
            .collect()
    }

    /// The rows (or events) of file `i`.
    fn rows_of(&self, i: u64) -> std::ops::Range<u64> {
        let per = self.rows.div_ceil(self.files.max(1));
        (i * per).min(self.rows)..((i + 1) * per).min(self.rows)
    }

    /// The bytes of file `i`.
    pub fn render(&self, i: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.write(i, &mut out)?;
        Ok(out)
    }

    /// Write file `i` to `out`.
    pub fn write(&self, i: usize, out: &mut (impl std::io::Write + Send)) -> Result<(), Error> {
        let i = i as u64;
        match (self.kind, self.format) {
            (Kind::Lineitem, Format::Csv) => lineitem::write_csv(self.seed, self.rows_of(i), true, out)?,
            (Kind::Lineitem, Format::Jsonl) => lineitem::write_jsonl(self.seed, self.rows_of(i), out)?,
            (Kind::Lineitem, Format::Parquet) => lineitem::write_parquet(self.seed, self.rows_of(i), self.row_group_rows, out)?,
            (Kind::Events, Format::Jsonl) => events::write_jsonl(self.seed, self.rows_of(i), out)?,
            (Kind::Events, Format::Document) => events::write_document(self.seed, self.rows_of(i), out)?,
            (Kind::Shards, Format::Tar) => shards::write_tar(self.seed, i, self.rows, self.sample_size, out)?,
            (Kind::Shards, Format::Tfrecord) => shards::write_tfrecord(self.seed, i, self.rows, self.sample_size, out)?,
            (k, f) => return Err(Error::Unsupported(k, f)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn sha(plan: &Plan) -> String {
        let bytes = plan.render(0).unwrap();
        hex_simd::encode_to_string(Sha256::digest(&bytes), hex_simd::AsciiCase::Lower)
    }

    /// The bytes of each format for a fixed seed are pinned: a change here changes every
    /// benchmark's input and must be deliberate (update the hash in the same commit).
    #[test]
    fn same_seed_same_bytes_pinned() {
        let cases = [
            (Kind::Lineitem, Format::Csv, 1000),
            (Kind::Lineitem, Format::Jsonl, 1000),
            (Kind::Lineitem, Format::Parquet, 1000),
            (Kind::Events, Format::Jsonl, 300),
            (Kind::Events, Format::Document, 300),
            (Kind::Shards, Format::Tar, 5),
            (Kind::Shards, Format::Tfrecord, 5),
        ];
        let mut got = Vec::new();
        for (kind, format, rows) in cases {
            let plan = Plan {
                kind,
                format,
                rows,
                seed: 7,
                sample_size: 3000,
                row_group_rows: 256,
                ..Plan::default()
            };
            let a = sha(&plan);
            assert_eq!(a, sha(&plan), "{kind:?} {format:?} is not deterministic");
            assert_ne!(a, sha(&Plan { seed: 8, ..plan.clone() }), "{kind:?} {format:?} ignores the seed");
            got.push(format!("{kind:?}/{format:?} {a}"));
        }
        let pinned = include_str!("../tests/pinned-sha256.txt");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pinned-sha256.txt"),
                got.join("\n") + "\n",
            )
            .unwrap();
            return;
        }
        assert_eq!(
            pinned.trim_end(),
            got.join("\n"),
            "dataset bytes changed; rerun with UPDATE_GOLDEN=1 if intended"
        );
    }

    #[test]
    fn files_split_rows_exactly() {
        let plan = Plan {
            rows: 1001,
            files: 4,
            ..Plan::default()
        };
        let total: u64 = (0..4).map(|i| plan.rows_of(i)).map(|r| r.end - r.start).sum();
        assert_eq!(total, 1001);
        assert!(matches!(
            Plan {
                kind: Kind::Shards,
                format: Format::Csv,
                ..Plan::default()
            }
            .render(0),
            Err(Error::Unsupported(..))
        ));
    }
}
