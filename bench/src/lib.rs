//! `quarry-bench`: Quarry's instruments for speed.
//!
//! A load generator in the spirit of MinIO's warp that speaks S3 to any endpoint over
//! keep-alive HTTP/1.1 connections ([`client`], signed by [`sigv4`]; both live in
//! `quarry-datasets`, which uploads datasets with them), drives workloads
//! ([`workload`]: put, get, head/stat, list, delete, mixed) across sizes and concurrencies,
//! and compares servers side by side in alternating rounds, each result also shown as a
//! fraction of a trivial loopback server's speed ([`ceiling`]) measured in the same run.
//! Figures are medians with spread and tail percentiles, never means alone ([`Summary`]).
//!
//! ```
//! let s = quarry_bench::Summary::of(&mut vec![3.0, 1.0, 2.0, 10.0]).unwrap();
//! assert_eq!((s.min, s.max), (1.0, 10.0));
//! assert_eq!(s.p50, 2.0);
//! ```

pub mod ceiling;
pub mod workload;

pub use quarry_datasets::s3 as client;
pub use quarry_datasets::sigv4;

/// This process's resident memory in MiB (`VmRSS`), 0 where `/proc` is absent: what the
/// scale examples report.
pub fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The `p` quantile (0 to 1) of a sample of durations, rank `(len - 1) * p` rounded down
/// (sorted in place; not empty): what the scale examples report.
pub fn duration_quantile(v: &mut [std::time::Duration], p: f64) -> std::time::Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

/// Order statistics of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Summarise `samples` (sorted in place); `None` for an empty sample.
    pub fn of(samples: &mut [f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        Some(Self {
            count: samples.len(),
            min: samples[0],
            p50: percentile(samples, 50.0),
            p90: percentile(samples, 90.0),
            p99: percentile(samples, 99.0),
            max: samples[samples.len() - 1],
        })
    }
}

/// Nearest-rank percentile of sorted `samples`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&mut v).unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        assert!(Summary::of(&mut []).is_none());
        assert_eq!(Summary::of(&mut [5.0]).unwrap().p99, 5.0);
    }
}
