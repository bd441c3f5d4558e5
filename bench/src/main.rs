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
    /// Run the standard suite (every workload family) and write table, JSON and chart.
    Suite(Box<SuiteArgs>),
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
struct SuiteArgs {
    /// The S3 endpoint under test (A).
    #[arg(long, env = "QUARRY_BENCH_ENDPOINT")]
    endpoint: String,
    #[arg(long, env = "QUARRY_BENCH_ACCESS_KEY", default_value = "quarryadmin")]
    access_key: String,
    #[arg(long, env = "QUARRY_BENCH_SECRET_KEY", default_value = "quarryadmin", hide_env_values = true)]
    secret_key: String,
    /// A second endpoint (B) for A/B ratios.
    #[arg(long)]
    vs: Option<String>,
    #[arg(long, default_value = "quarryadmin")]
    vs_access_key: String,
    #[arg(long, default_value = "quarryadmin", hide_env_values = true)]
    vs_secret_key: String,
    /// Skip the loopback ceiling.
    #[arg(long)]
    no_ceiling: bool,
    /// Seconds per round.
    #[arg(long, default_value = "2")]
    duration: f64,
    #[arg(long, default_value = "3")]
    rounds: usize,
    /// Seconds-long smoke version of the suite.
    #[arg(long)]
    quick: bool,
    /// Directory for results.json and results.svg.
    #[arg(long, default_value = "bench-results")]
    out: std::path::PathBuf,
}

#[derive(clap::Args, Clone)]
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
    /// PUTs larger than this use multipart uploads with parts of this size.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    multipart_part_size: usize,
    /// Bytes per ranged GET (rangeget).
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    range_size: usize,
    /// Delimiter for LIST (keys are spread over 100 `dNN/` prefixes); empty for flat.
    #[arg(long, default_value = "")]
    list_delimiter: String,
    /// Rows per Parquet object and per row group (parquet).
    #[arg(long, default_value = "500000")]
    parquet_rows: u64,
    #[arg(long, default_value = "125000")]
    parquet_row_group_rows: u64,
    /// Columns each Parquet scan reads.
    #[arg(long, default_value = "3")]
    parquet_columns: usize,
    /// Samples per tar shard (shards; --sizes is the sample size).
    #[arg(long, default_value = "64")]
    shard_samples: u64,
    /// Training readers fetch samples by ranged GETs instead of streaming whole shards.
    #[arg(long)]
    ranged: bool,
    /// Write an SVG chart of throughput and latency here.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
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
    /// Training samples per second (shards only).
    samples_per_s_median: Option<f64>,
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
        samples_per_s_median: (spec.kind == Kind::Shards).then(|| median(&rounds.iter().map(Outcome::samples_per_s).collect::<Vec<_>>())),
        latency_ms: latency,
        errors: rounds.iter().map(|o| o.errors).sum(),
        first_error: rounds.iter().find_map(|o| o.first_error.clone()),
        fraction_of_ceiling: None,
        ratio_vs_b_median: None,
        ratio_vs_b_min: None,
        ratio_vs_b_max: None,
    }
}

async fn run(args: RunArgs) -> Result<Vec<Row>> {
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
    let targets_n = 1 + usize::from(b.is_some()) + usize::from(args.ceiling);
    let total_runs = args.sizes.len() * kinds.len() * args.concurrency.len() * targets_n * args.rounds;
    let progress = indicatif::ProgressBar::new(total_runs as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs, {elapsed} elapsed, ~{eta} left  {msg}")
            .expect("valid template"),
    );
    println!(
        "{:<8} {:>7} {:>5}  {:<8} {:>22} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>18}",
        "work",
        "size",
        "conc",
        "target",
        "req/s med [min-max]",
        "MiB/s",
        "samples/s",
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
            Some(c) => Some(Arc::new(Endpoint {
                multipart: false,
                ..Endpoint::parse(&c.1, signer("ceiling", "ceiling"))?
            })),
            None => None,
        };
        for &kind in &kinds {
            for &conc in &args.concurrency {
                let spec = Spec {
                    objects: args.objects,
                    multipart_part_size: args.multipart_part_size,
                    range_size: args.range_size,
                    list_delimiter: (!args.list_delimiter.is_empty()).then(|| args.list_delimiter.clone()),
                    parquet_rows: args.parquet_rows,
                    parquet_row_group_rows: args.parquet_row_group_rows.max(1),
                    parquet_columns: args.parquet_columns,
                    shard_samples: args.shard_samples,
                    ranged: args.ranged,
                    ..Spec::new(kind, size, conc, Duration::from_secs_f64(args.duration), &args.bucket)
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
                for round in 0..args.rounds {
                    for (i, (name, ep)) in targets.iter().enumerate() {
                        progress.set_message(format!("{} {} c={} {name} round {}", kind.name(), human(size), conc, round + 1));
                        results[i].push(workload::run(ep, &spec).await);
                        progress.inc(1);
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
                progress.suspend(|| group.iter().for_each(print_row));
                rows.extend(group);
            }
        }
    }
    progress.finish_and_clear();
    Ok(rows)
}

fn write_outputs(rows: &[Row], json: Option<&std::path::Path>, svg: Option<&std::path::Path>) -> Result<()> {
    if let Some(path) = svg {
        std::fs::write(path, chart(rows))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(rows)?)?;
        println!("wrote {}", path.display());
    }
    if rows.iter().any(|r| r.errors > 0) {
        eprintln!("some operations failed: see the errors column");
    }
    Ok(())
}

/// The standard suite: every workload family at the sizes and concurrencies the README
/// and BENCHMARKS.md quote. `quick` shrinks it to seconds (CI smoke runs).
fn suite_presets(quick: bool) -> Vec<Vec<&'static str>> {
    if quick {
        return vec![
            vec![
                "--workloads",
                "get,put,head,delete,mixed",
                "--sizes",
                "4KiB",
                "--concurrency",
                "2",
                "--objects",
                "8",
            ],
            vec![
                "--workloads",
                "put",
                "--sizes",
                "11MiB",
                "--multipart-part-size",
                "5MiB",
                "--concurrency",
                "1",
                "--bucket",
                "quarry-bench-big",
            ],
            vec![
                "--workloads",
                "rangeget",
                "--sizes",
                "1MiB",
                "--objects",
                "4",
                "--range-size",
                "16KiB",
                "--concurrency",
                "2",
            ],
            vec![
                "--workloads",
                "list",
                "--sizes",
                "1B",
                "--objects",
                "300",
                "--concurrency",
                "2",
                "--bucket",
                "quarry-bench-list",
                "--list-delimiter",
                "/",
            ],
            vec![
                "--workloads",
                "parquet",
                "--objects",
                "2",
                "--parquet-rows",
                "20000",
                "--parquet-row-group-rows",
                "5000",
                "--concurrency",
                "2",
            ],
            vec![
                "--workloads",
                "shards",
                "--sizes",
                "4KiB",
                "--shard-samples",
                "8",
                "--objects",
                "4",
                "--concurrency",
                "2",
            ],
        ];
    }
    vec![
        vec!["--workloads", "get,put,head,mixed", "--sizes", "4KiB,1MiB", "--concurrency", "1,16"],
        vec![
            "--workloads",
            "put",
            "--sizes",
            "64MiB",
            "--concurrency",
            "4",
            "--bucket",
            "quarry-bench-big",
        ],
        vec![
            "--workloads",
            "rangeget",
            "--sizes",
            "16MiB",
            "--objects",
            "8",
            "--range-size",
            "64KiB",
            "--concurrency",
            "1,16",
        ],
        vec![
            "--workloads",
            "list",
            "--sizes",
            "1B",
            "--objects",
            "100000",
            "--concurrency",
            "16",
            "--bucket",
            "quarry-bench-list",
        ],
        vec![
            "--workloads",
            "list",
            "--sizes",
            "1B",
            "--objects",
            "100000",
            "--concurrency",
            "16",
            "--bucket",
            "quarry-bench-list",
            "--skip-prepare",
            "--list-delimiter",
            "/",
        ],
        vec![
            "--workloads",
            "parquet",
            "--objects",
            "4",
            "--parquet-rows",
            "1000000",
            "--parquet-row-group-rows",
            "125000",
            "--concurrency",
            "1,16",
        ],
        vec![
            "--workloads",
            "shards",
            "--sizes",
            "100KiB",
            "--shard-samples",
            "100",
            "--objects",
            "16",
            "--concurrency",
            "1,8",
        ],
        vec![
            "--workloads",
            "shards",
            "--ranged",
            "--sizes",
            "100KiB",
            "--shard-samples",
            "100",
            "--objects",
            "16",
            "--concurrency",
            "8",
            "--bucket",
            "quarry-bench-ranged",
        ],
    ]
}

/// Parses one preset's arguments on top of the suite's common ones.
#[derive(Parser)]
struct PresetCli {
    #[command(flatten)]
    args: RunArgs,
}

async fn suite(s: SuiteArgs) -> Result<()> {
    let mut common: Vec<String> = vec![
        "preset".into(),
        "--endpoint".into(),
        s.endpoint.clone(),
        "--access-key".into(),
        s.access_key.clone(),
        "--secret-key".into(),
        s.secret_key.clone(),
    ];
    if let Some(vs) = &s.vs {
        common.extend([
            "--vs".into(),
            vs.clone(),
            "--vs-access-key".into(),
            s.vs_access_key.clone(),
            "--vs-secret-key".into(),
            s.vs_secret_key.clone(),
        ]);
    }
    if !s.no_ceiling {
        common.push("--ceiling".into());
    }
    let (duration, rounds) = if s.quick {
        ("0.3".to_owned(), "1".to_owned())
    } else {
        (s.duration.to_string(), s.rounds.to_string())
    };
    common.extend(["--duration".into(), duration, "--rounds".into(), rounds]);
    std::fs::create_dir_all(&s.out)?;
    let mut rows = Vec::new();
    for preset in suite_presets(s.quick) {
        let argv: Vec<String> = common.iter().cloned().chain(preset.iter().map(|a| (*a).to_owned())).collect();
        let args = PresetCli::try_parse_from(&argv)?.args;
        rows.extend(run(args).await?);
    }
    write_outputs(&rows, Some(&s.out.join("results.json")), Some(&s.out.join("results.svg")))
}

fn print_row(r: &Row) {
    let l = r.latency_ms.as_ref();
    let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.3}"));
    let ratio = match (r.ratio_vs_b_median, r.ratio_vs_b_min, r.ratio_vs_b_max) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.2} [{lo:.2}-{hi:.2}]"),
        _ => "-".into(),
    };
    println!(
        "{:<8} {:>7} {:>5}  {:<8} {:>22} {:>9.1} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>18}",
        r.workload,
        human(r.size),
        r.concurrency,
        r.target,
        format!("{:.0} [{:.0}-{:.0}]", r.ops_per_s_median, r.ops_per_s_min, r.ops_per_s_max),
        r.mib_per_s_median,
        r.samples_per_s_median.map_or("-".into(), |v| format!("{v:.0}")),
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

/// An SVG chart: one line per measured row, a bar for throughput (as a fraction of the
/// ceiling when one was measured, else of the fastest row of its workload) and the p50/p99
/// latencies as text and ticks.
fn chart(rows: &[Row]) -> String {
    let line_h = 22.0;
    let (label_w, bar_w) = (330.0, 420.0);
    let height = 60.0 + line_h * rows.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1100\" height=\"{height}\" font-family=\"monospace\" font-size=\"12\">\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">quarry-bench: requests/s (bar: fraction of ceiling, or of the fastest row) and latency p50/p99</text>\n"
    );
    let best = |w: &str| {
        rows.iter()
            .filter(|r| r.workload == w)
            .map(|r| r.ops_per_s_median)
            .fold(0.0, f64::max)
    };
    for (i, r) in rows.iter().enumerate() {
        let y = 40.0 + line_h * i as f64;
        let frac = r
            .fraction_of_ceiling
            .unwrap_or_else(|| r.ops_per_s_median / best(r.workload).max(f64::MIN_POSITIVE));
        let color = match r.target.as_str() {
            "A" => "#2f6fdf",
            "B" => "#e07b39",
            _ => "#9a9a9a",
        };
        let label = format!("{} {} c={} {}", r.workload, human(r.size), r.concurrency, r.target);
        let lat = r
            .latency_ms
            .as_ref()
            .map_or("-".into(), |l| format!("{:.2}/{:.2} ms", l.p50, l.p99));
        svg.push_str(&format!(
            "<text x=\"10\" y=\"{ty}\">{label}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"14\" fill=\"{color}\"/>\
             <text x=\"{tx}\" y=\"{ty}\">{ops:.0} req/s  {mib:.1} MiB/s  {lat}</text>\n",
            ty = y + 11.0,
            w = (frac.min(1.2) / 1.2 * bar_w).max(1.0),
            tx = label_w + bar_w + 10.0,
            ops = r.ops_per_s_median,
            mib = r.mib_per_s_median,
        ));
    }
    let x1 = label_w + bar_w / 1.2;
    svg.push_str(&format!(
        "<line x1=\"{x1}\" y1=\"30\" x2=\"{x1}\" y2=\"{height}\" stroke=\"#444\" stroke-dasharray=\"3,3\"/>\n</svg>\n"
    ));
    svg
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Cmd::Run(args) => rt.block_on(async {
            let rows = run((*args).clone()).await?;
            write_outputs(&rows, args.json.as_deref(), args.chart.as_deref())
        }),
        Cmd::Suite(s) => rt.block_on(suite(*s)),
        Cmd::Ceiling { address, size } => rt.block_on(quarry_bench::ceiling::serve(&address, size)),
    }
}
