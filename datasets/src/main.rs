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
    /// What to generate: lineitem (TPC-H-like table), events (nested JSON logs), shards
    /// (training data), or all (every dataset in every format at --scale: lineitem
    /// scale×6M rows, events scale×1M, scale×64 shards of 100 samples each, at least 1).
    #[arg(value_enum)]
    dataset: DatasetArg,
    /// Encoding: csv, jsonl, parquet (lineitem); jsonl, document (events); tar, tfrecord (shards).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
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
    All,
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

fn format_of(f: FormatArg) -> Format {
    match f {
        FormatArg::Csv => Format::Csv,
        FormatArg::Jsonl => Format::Jsonl,
        FormatArg::Parquet => Format::Parquet,
        FormatArg::Document => Format::Document,
        FormatArg::Tar => Format::Tar,
        FormatArg::Tfrecord => Format::Tfrecord,
    }
}

/// The files to generate.
fn plans(cli: &Cli) -> Result<Vec<Plan>> {
    if cli.files == 0 {
        bail!("--files must be at least 1");
    }
    let base = Plan {
        seed: cli.seed,
        files: cli.files,
        row_group_rows: cli.row_group_rows.max(1),
        sample_size: cli.sample_size,
        ..Plan::default()
    };
    let kind = match cli.dataset {
        DatasetArg::All => {
            let scale = cli.scale.unwrap_or(0.1);
            let rows = ((scale * lineitem::ROWS_PER_SCALE as f64).round() as u64).max(1);
            let files = rows.div_ceil(1_000_000).max(1);
            let events = ((scale * 1_000_000.0).round() as u64).max(1);
            let shards = ((scale * 64.0).round() as u64).max(1);
            let p = |kind, format, rows, files| Plan {
                kind,
                format,
                rows,
                files,
                ..base.clone()
            };
            return Ok(vec![
                p(Kind::Lineitem, Format::Csv, rows, files),
                p(Kind::Lineitem, Format::Jsonl, rows, files),
                p(Kind::Lineitem, Format::Parquet, rows, files),
                p(Kind::Events, Format::Jsonl, events, files),
                p(Kind::Events, Format::Document, events, 1),
                p(Kind::Shards, Format::Tar, 100, shards),
                p(Kind::Shards, Format::Tfrecord, 100, shards),
            ]);
        }
        DatasetArg::Lineitem => Kind::Lineitem,
        DatasetArg::Events => Kind::Events,
        DatasetArg::Shards => Kind::Shards,
    };
    let format = format_of(cli.format.context("--format is required")?);
    let rows = match (cli.rows, cli.scale) {
        (Some(r), _) => r,
        (None, Some(s)) if kind == Kind::Lineitem => (s * lineitem::ROWS_PER_SCALE as f64).round() as u64,
        (None, Some(_)) => bail!("--scale applies to lineitem (and all) only"),
        (None, None) => Plan::default().rows,
    };
    Ok(vec![Plan {
        kind,
        format,
        rows,
        ..base
    }])
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let plans = plans(&cli)?;
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
    for (plan, i, name) in plans
        .iter()
        .flat_map(|p| p.file_names().into_iter().enumerate().map(move |(i, n)| (p, i, n)))
    {
        let name = &name;
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
