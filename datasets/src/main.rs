//! `quarry-datasets`: generate the benchmark datasets to local files or an S3 endpoint.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use quarry_datasets::s3::{Conn, Endpoint, Req};
use quarry_datasets::sigv4::Signer;
use quarry_datasets::{Format, Kind, Plan, lineitem};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "quarry-datasets",
    version,
    about = "Deterministic datasets for Quarry's benchmarks: same seed, same bytes, everywhere"
)]
struct Cli {
    /// What to generate: lineitem (TPC-H-like table), events (nested JSON logs), shards (training data).
    #[arg(value_enum)]
    dataset: DatasetArg,
    /// Encoding: csv, jsonl, parquet (lineitem); jsonl, document (events); tar, tfrecord (shards).
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Seed; the same seed gives byte-identical output.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows (lineitem), events (events) or samples per shard (shards).
    #[arg(long, conflicts_with = "scale")]
    rows: Option<u64>,
    /// TPC-H scale factor for lineitem (1.0 = 6,000,000 rows).
    #[arg(long)]
    scale: Option<f64>,
    /// Number of files (or shards) to split into.
    #[arg(long, default_value_t = 1)]
    files: u64,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = 131_072)]
    row_group_rows: u64,
    /// Bytes per training sample (shards).
    #[arg(long, default_value_t = 102_400)]
    sample_size: usize,
    /// Write files under this directory.
    #[arg(long, required_unless_present = "endpoint")]
    out: Option<std::path::PathBuf>,
    /// Upload to this S3 endpoint instead (http://host:port); the bucket is created if missing.
    #[arg(long, requires = "bucket")]
    endpoint: Option<String>,
    #[arg(long)]
    bucket: Option<String>,
    /// Key prefix for uploads.
    #[arg(long, default_value = "")]
    prefix: String,
    #[arg(long, env = "QUARRY_BENCH_ACCESS_KEY", default_value = "quarryadmin")]
    access_key: String,
    #[arg(long, env = "QUARRY_BENCH_SECRET_KEY", default_value = "quarryadmin", hide_env_values = true)]
    secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum DatasetArg {
    Lineitem,
    Events,
    Shards,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Jsonl,
    Parquet,
    Document,
    Tar,
    Tfrecord,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let kind = match cli.dataset {
        DatasetArg::Lineitem => Kind::Lineitem,
        DatasetArg::Events => Kind::Events,
        DatasetArg::Shards => Kind::Shards,
    };
    let format = match cli.format {
        FormatArg::Csv => Format::Csv,
        FormatArg::Jsonl => Format::Jsonl,
        FormatArg::Parquet => Format::Parquet,
        FormatArg::Document => Format::Document,
        FormatArg::Tar => Format::Tar,
        FormatArg::Tfrecord => Format::Tfrecord,
    };
    let rows = match (cli.rows, cli.scale) {
        (Some(r), _) => r,
        (None, Some(s)) if kind == Kind::Lineitem => (s * lineitem::ROWS_PER_SCALE as f64).round() as u64,
        (None, Some(_)) => bail!("--scale applies to lineitem only"),
        (None, None) => Plan::default().rows,
    };
    if cli.files == 0 {
        bail!("--files must be at least 1");
    }
    let plan = Plan {
        kind,
        format,
        seed: cli.seed,
        rows,
        files: cli.files,
        row_group_rows: cli.row_group_rows.max(1),
        sample_size: cli.sample_size,
    };
    let names = plan.file_names();
    let target = match &cli.endpoint {
        Some(url) => {
            let signer = Signer {
                access_key: cli.access_key.clone(),
                secret_key: cli.secret_key.clone(),
                region: cli.region.clone(),
            };
            let ep = Arc::new(Endpoint::parse(url, signer)?);
            let bucket = cli.bucket.clone().expect("clap requires --bucket with --endpoint");
            let mut c = Conn::new(ep.clone());
            let r = c
                .send(Req {
                    method: "PUT",
                    bucket: &bucket,
                    key: None,
                    query: &[],
                    headers: &[],
                    body: Bytes::new(),
                })
                .await?;
            if !(200..300).contains(&r.status) && r.status != 409 {
                bail!("creating bucket {bucket}: HTTP {}", r.status);
            }
            Some((c, bucket))
        }
        None => None,
    };
    let mut target = target;
    for (i, name) in names.iter().enumerate() {
        let bytes = plan.render(i)?;
        let len = bytes.len();
        match (&mut target, &cli.out) {
            (Some((c, bucket)), _) => {
                let key = format!("{}{name}", cli.prefix);
                let r = c
                    .send(Req {
                        method: "PUT",
                        bucket,
                        key: Some(&key),
                        query: &[],
                        headers: &[],
                        body: Bytes::from(bytes),
                    })
                    .await?;
                if !(200..300).contains(&r.status) {
                    bail!("uploading {key}: HTTP {}", r.status);
                }
                println!("s3://{bucket}/{key} {len}");
            }
            (None, Some(dir)) => {
                let path = dir.join(name);
                std::fs::create_dir_all(path.parent().expect("names have a directory"))?;
                std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
                println!("{} {len}", path.display());
            }
            (None, None) => bail!("give --out or --endpoint"),
        }
    }
    Ok(())
}
