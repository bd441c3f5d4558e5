//! `quarry-bench`: run S3 workloads against one or two endpoints (and the loopback ceiling)
//! and report ops/s, MiB/s and latency percentiles, with ratios.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use quarry_bench::Summary;
use quarry_bench::client::Endpoint;
use quarry_bench::sigv4::Signer;
use quarry_bench::workload::{self, Kind, Outcome, Spec};
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "quarry-bench",
    version,
    about = "S3 load generator: Quarry against a baseline and the loopback ceiling"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run workloads and print a table (and JSON with --json).
    Run(Box<RunArgs>),
    /// Serve the trivial loopback HTTP server used as the ceiling.
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:0")]
        address: String,
        /// Bytes every GET returns.
        #[arg(long, default_value = "4096", value_parser = parse_size)]
        size: usize,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The S3 endpoint under test (A), e.g. http://127.0.0.1:9000.
    #[arg(long, env = "QUARRY_BENCH_ENDPOINT")]
    endpoint: String,
    #[arg(long, env = "QUARRY_BENCH_ACCESS_KEY", default_value = "quarryadmin")]
    access_key: String,
    #[arg(long, env = "QUARRY_BENCH_SECRET_KEY", default_value = "quarryadmin", hide_env_values = true)]
    secret_key: String,
    /// A second endpoint (B), run alternately with A; ratios are A/B.
    #[arg(long)]
    vs: Option<String>,
    #[arg(long, default_value = "quarryadmin")]
    vs_access_key: String,
    #[arg(long, default_value = "quarryadmin", hide_env_values = true)]
    vs_secret_key: String,
    /// Also measure the loopback ceiling server (started as a child process).
    #[arg(long)]
    ceiling: bool,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Workloads: put, get, head (stat), list, delete, mixed.
    #[arg(long, value_delimiter = ',', default_value = "get")]
    workloads: Vec<String>,
    /// Object sizes (4KiB, 1MiB, 256MiB, ...).
    #[arg(long, value_delimiter = ',', default_value = "4KiB", value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Concurrent workers (connections); several values sweep.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    concurrency: Vec<usize>,
    /// Seconds per round.
    #[arg(long, default_value = "5")]
    duration: f64,
    /// Rounds per endpoint, alternating A B A B.
    #[arg(long, default_value = "3")]
    rounds: usize,
    /// Objects prepared for read workloads.
    #[arg(long, default_value = "64")]
    objects: usize,
    #[arg(long, default_value = "quarry-bench")]
    bucket: String,
    /// Use the objects already in the bucket instead of writing them first.
    #[arg(long)]
    skip_prepare: bool,
    /// Write results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = [("KiB", 1024), ("MiB", 1024 * 1024), ("GiB", 1024 * 1024 * 1024), ("B", 1)]
        .iter()
        .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
        .unwrap_or((s, 1));
    num.trim()
        .parse::<usize>()
        .map(|n| n * mult)
        .map_err(|e| format!("bad size {s:?}: {e}"))
}

fn human(size: usize) -> String {
    match size {
        s if s >= 1 << 30 && s % (1 << 30) == 0 => format!("{}GiB", s >> 30),
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{}MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{}KiB", s >> 10),
        s => format!("{s}B"),
    }
}

struct Ceiling(std::process::Child, String);

impl Ceiling {
    fn start(size: usize) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = std::process::Command::new(exe)
            .args(["ceiling", "--size", &size.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("ceiling stdout")?).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("ceiling listening on ")
            .context("ceiling banner")?
            .to_owned();
        Ok(Self(child, url))
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(serde::Serialize)]
struct Row {
    workload: &'static str,
    size: usize,
    concurrency: usize,
    target: String,
    ops_per_s_median: f64,
    ops_per_s_min: f64,
    ops_per_s_max: f64,
    mib_per_s_median: f64,
    latency_ms: Option<LatencyJson>,
    errors: u64,
    first_error: Option<String>,
    fraction_of_ceiling: Option<f64>,
    ratio_vs_b_median: Option<f64>,
    ratio_vs_b_min: Option<f64>,
    ratio_vs_b_max: Option<f64>,
}

#[derive(serde::Serialize)]
struct LatencyJson {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    Summary::of(&mut v).map_or(0.0, |s| s.p50)
}

fn summarize(target: &str, spec: &Spec, rounds: &[Outcome]) -> Row {
    let ops: Vec<f64> = rounds.iter().map(Outcome::ops_per_s).collect();
    let mibs: Vec<f64> = rounds.iter().map(Outcome::mib_per_s).collect();
    let mut lat: Vec<f64> = rounds.iter().flat_map(|o| o.latencies_ms.iter().copied()).collect();
    let latency = Summary::of(&mut lat).map(|s| LatencyJson {
        p50: s.p50,
        p90: s.p90,
        p99: s.p99,
        max: s.max,
    });
    Row {
        workload: spec.kind.name(),
        size: spec.size,
        concurrency: spec.concurrency,
        target: target.to_owned(),
        ops_per_s_median: median(&ops),
        ops_per_s_min: ops.iter().copied().fold(f64::INFINITY, f64::min),
        ops_per_s_max: ops.iter().copied().fold(0.0, f64::max),
        mib_per_s_median: median(&mibs),
        latency_ms: latency,
        errors: rounds.iter().map(|o| o.errors).sum(),
        first_error: rounds.iter().find_map(|o| o.first_error.clone()),
        fraction_of_ceiling: None,
        ratio_vs_b_median: None,
        ratio_vs_b_min: None,
        ratio_vs_b_max: None,
    }
}

async fn run(args: RunArgs) -> Result<()> {
    let signer = |ak: &str, sk: &str| Signer {
        access_key: ak.to_owned(),
        secret_key: sk.to_owned(),
        region: args.region.clone(),
    };
    let a = Arc::new(Endpoint::parse(&args.endpoint, signer(&args.access_key, &args.secret_key))?);
    let b = match &args.vs {
        Some(u) => Some(Arc::new(Endpoint::parse(u, signer(&args.vs_access_key, &args.vs_secret_key))?)),
        None => None,
    };
    let kinds: Vec<Kind> = args.workloads.iter().map(|w| Kind::parse(w)).collect::<Result<_>>()?;
    if args.rounds == 0 || args.concurrency.contains(&0) {
        bail!("--rounds and --concurrency must be at least 1");
    }
    let mut rows: Vec<Row> = Vec::new();
    println!(
        "{:<7} {:>7} {:>5}  {:<8} {:>22} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>18}",
        "work",
        "size",
        "conc",
        "target",
        "ops/s med [min-max]",
        "MiB/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "×ceiling",
        "A/B med [min-max]"
    );
    for &size in &args.sizes {
        let ceiling = if args.ceiling { Some(Ceiling::start(size)?) } else { None };
        let c_ep = match &ceiling {
            Some(c) => Some(Arc::new(Endpoint::parse(&c.1, signer("ceiling", "ceiling"))?)),
            None => None,
        };
        for &kind in &kinds {
            for &conc in &args.concurrency {
                let spec = Spec {
                    kind,
                    size,
                    concurrency: conc,
                    duration: Duration::from_secs_f64(args.duration),
                    objects: args.objects,
                    bucket: args.bucket.clone(),
                };
                let mut targets: Vec<(&str, Arc<Endpoint>)> = vec![("A", a.clone())];
                if let Some(b) = &b {
                    targets.push(("B", b.clone()));
                }
                if let Some(c) = &c_ep {
                    targets.push(("ceiling", c.clone()));
                }
                for (name, ep) in targets.iter().filter(|_| !args.skip_prepare) {
                    workload::prepare(ep, &spec)
                        .await
                        .with_context(|| format!("preparing {name} ({})", ep.authority))?;
                }
                let mut results: Vec<Vec<Outcome>> = vec![Vec::new(); targets.len()];
                for _ in 0..args.rounds {
                    for (i, (_, ep)) in targets.iter().enumerate() {
                        results[i].push(workload::run(ep, &spec).await);
                    }
                }
                let mut group: Vec<Row> = targets.iter().zip(&results).map(|((n, _), r)| summarize(n, &spec, r)).collect();
                let ceiling_ops = c_ep.as_ref().map(|_| group.last().map_or(0.0, |r| r.ops_per_s_median));
                for row in group.iter_mut() {
                    if let Some(c) = ceiling_ops.filter(|c| *c > 0.0) {
                        row.fraction_of_ceiling = Some(row.ops_per_s_median / c);
                    }
                }
                if b.is_some() {
                    let ratios: Vec<f64> = results[0]
                        .iter()
                        .zip(&results[1])
                        .map(|(x, y)| x.ops_per_s() / y.ops_per_s().max(f64::MIN_POSITIVE))
                        .collect();
                    group[0].ratio_vs_b_median = Some(median(&ratios));
                    group[0].ratio_vs_b_min = ratios.iter().copied().reduce(f64::min);
                    group[0].ratio_vs_b_max = ratios.iter().copied().reduce(f64::max);
                }
                for r in &group {
                    print_row(r);
                }
                rows.extend(group);
            }
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&rows)?)?;
        println!("wrote {}", path.display());
    }
    if rows.iter().any(|r| r.errors > 0) {
        eprintln!("some operations failed: see the errors column");
    }
    Ok(())
}

fn print_row(r: &Row) {
    let l = r.latency_ms.as_ref();
    let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.3}"));
    let ratio = match (r.ratio_vs_b_median, r.ratio_vs_b_min, r.ratio_vs_b_max) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.2} [{lo:.2}-{hi:.2}]"),
        _ => "-".into(),
    };
    println!(
        "{:<7} {:>7} {:>5}  {:<8} {:>22} {:>9.1} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>18}",
        r.workload,
        human(r.size),
        r.concurrency,
        r.target,
        format!("{:.0} [{:.0}-{:.0}]", r.ops_per_s_median, r.ops_per_s_min, r.ops_per_s_max),
        r.mib_per_s_median,
        f(l.map(|l| l.p50)),
        f(l.map(|l| l.p90)),
        f(l.map(|l| l.p99)),
        f(l.map(|l| l.max)),
        r.errors,
        r.fraction_of_ceiling.map_or("-".into(), |x| format!("{x:.2}")),
        ratio,
    );
    if let Some(e) = &r.first_error {
        println!("        first error: {e}");
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Cmd::Run(args) => rt.block_on(run(*args)),
        Cmd::Ceiling { address, size } => rt.block_on(quarry_bench::ceiling::serve(&address, size)),
    }
}
