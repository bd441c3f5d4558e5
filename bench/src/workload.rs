//! Workloads: what each worker does in its loop, and the preparation it needs.

use crate::client::{Conn, Endpoint, Req, Resp};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use rand::Rng as _;
use rand::seq::SliceRandom as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The operations a run can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Put,
    Get,
    /// GETs of random `range_size` byte ranges of the objects.
    RangeGet,
    Head,
    List,
    Delete,
    /// warp's mix: 45% GET, 30% HEAD (stat), 15% PUT, 10% DELETE of recent PUTs.
    Mixed,
    /// What ClickHouse, Spark and Arrow do with a Parquet file: HEAD, the 8-byte tail, the
    /// footer, then the column chunks of a few columns in every row group.
    Parquet,
    /// A training data loader: readers stream shuffled tar shards whole (or, with
    /// `ranged`, sample by sample).
    Shards,
}

impl Kind {
    /// Every workload, in report order.
    pub const ALL: [Self; 9] = [
        Self::Put,
        Self::Get,
        Self::RangeGet,
        Self::Head,
        Self::List,
        Self::Delete,
        Self::Mixed,
        Self::Parquet,
        Self::Shards,
    ];

    /// Parse a workload name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "stat" => Ok(Self::Head),
            _ => Self::ALL
                .into_iter()
                .find(|k| k.name() == s)
                .with_context(|| format!("unknown workload {s:?} (put, get, rangeget, head, stat, list, delete, mixed, parquet, shards)")),
        }
    }

    /// Name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Get => "get",
            Self::RangeGet => "rangeget",
            Self::Head => "head",
            Self::List => "list",
            Self::Delete => "delete",
            Self::Mixed => "mixed",
            Self::Parquet => "parquet",
            Self::Shards => "shards",
        }
    }
}

/// One measured configuration.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Spec {
    pub kind: Kind,
    /// Object size; for `shards`, the sample size.
    pub size: usize,
    pub concurrency: usize,
    pub duration: Duration,
    /// Objects prepared for read workloads (files for `parquet`, shards for `shards`).
    pub objects: usize,
    pub bucket: String,
    /// PUTs of objects larger than this use multipart uploads with parts of this size.
    pub multipart_part_size: usize,
    /// Bytes per ranged GET.
    pub range_size: usize,
    /// Delimiter for LIST (`None`: flat listing).
    pub list_delimiter: Option<String>,
    /// Rows per Parquet file and per row group.
    pub parquet_rows: u64,
    pub parquet_row_group_rows: u64,
    /// Columns a Parquet scan reads.
    pub parquet_columns: usize,
    /// Samples per training shard, and whether readers fetch them one range at a time.
    pub shard_samples: u64,
    pub ranged: bool,
}

impl Spec {
    /// A spec with defaults for everything but the essentials.
    pub fn new(kind: Kind, size: usize, concurrency: usize, duration: Duration, bucket: &str) -> Self {
        Self {
            kind,
            size,
            concurrency,
            duration,
            objects: 64,
            bucket: bucket.to_owned(),
            multipart_part_size: 16 << 20,
            range_size: 64 << 10,
            list_delimiter: None,
            parquet_rows: 500_000,
            parquet_row_group_rows: 125_000,
            parquet_columns: 3,
            shard_samples: 64,
            ranged: false,
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Outcome {
    /// Successful requests.
    pub ops: u64,
    pub bytes: u64,
    pub errors: u64,
    /// Training samples delivered (`shards`).
    pub samples: u64,
    pub elapsed_s: f64,
    /// Per-request latencies in milliseconds.
    #[serde(skip)]
    pub latencies_ms: Vec<f64>,
    pub first_error: Option<String>,
}

impl Outcome {
    pub fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed_s
    }
    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed_s / (1024.0 * 1024.0)
    }
    pub fn samples_per_s(&self) -> f64 {
        self.samples as f64 / self.elapsed_s
    }

    fn record(&mut self, what: &str, started: Instant, r: Result<Resp>, sent: u64) -> Option<Resp> {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match r {
            Ok(resp) if (200..300).contains(&resp.status) => {
                self.ops += 1;
                self.bytes += resp.bytes + sent;
                self.latencies_ms.push(ms);
                Some(resp)
            }
            Ok(resp) => {
                self.errors += 1;
                self.first_error
                    .get_or_insert_with(|| format!("{what} returned HTTP {}", resp.status));
                None
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| format!("{what}: {e:#}"));
                None
            }
        }
    }

    fn merge(&mut self, o: Outcome) {
        self.ops += o.ops;
        self.bytes += o.bytes;
        self.errors += o.errors;
        self.samples += o.samples;
        self.latencies_ms.extend(o.latencies_ms);
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

/// Keys spread over 100 "directories", so delimiter listings have prefixes to roll up.
fn key(i: usize) -> String {
    format!("d{:02}/obj{i:08}", i % 100)
}

fn parquet_key(i: usize) -> String {
    format!("parquet/part-{i:05}.parquet")
}

fn shard_key(i: usize) -> String {
    format!("shards/shard-{i:05}.tar")
}

fn ok(status: u16) -> bool {
    (200..300).contains(&status)
}

fn payload(size: usize) -> Bytes {
    let mut v = vec![0u8; size];
    rand::rng().fill(&mut v[..]);
    Bytes::from(v)
}

/// PUT `body` at `key`, as a multipart upload when it is larger than the part size.
async fn put(c: &mut Conn, spec: &Spec, key: &str, body: Bytes) -> Result<()> {
    if body.len() > spec.multipart_part_size && c.endpoint().multipart {
        c.put_multipart(&spec.bucket, key, body, spec.multipart_part_size).await?;
    } else {
        let r = c
            .send(Req {
                body,
                ..Req::new("PUT", &spec.bucket, Some(key))
            })
            .await?;
        if !ok(r.status) {
            bail!("PUT {key} returned HTTP {}", r.status);
        }
    }
    Ok(())
}

/// Builds prepared object `i`: its key and bytes.
type MakeObject = Box<dyn Fn(usize) -> (String, Bytes) + Send + Sync>;

/// Create the bucket and the objects a workload reads.
pub async fn prepare(ep: &Arc<Endpoint>, spec: &Spec) -> Result<()> {
    let mut c = Conn::new(ep.clone());
    let r = c.send(Req::new("PUT", &spec.bucket, None)).await?;
    if !ok(r.status) && r.status != 409 {
        bail!("creating bucket {} failed with HTTP {}", spec.bucket, r.status);
    }
    let (count, make): (usize, MakeObject) = match spec.kind {
        Kind::Get | Kind::RangeGet | Kind::Head | Kind::List | Kind::Mixed => {
            let body = payload(spec.size);
            (spec.objects, Box::new(move |i| (key(i), body.clone())))
        }
        Kind::Parquet => {
            let plan = quarry_datasets::Plan {
                kind: quarry_datasets::Kind::Lineitem,
                format: quarry_datasets::Format::Parquet,
                rows: spec.parquet_rows,
                row_group_rows: spec.parquet_row_group_rows,
                ..quarry_datasets::Plan::default()
            };
            let bytes = Bytes::from(plan.render(0)?);
            (spec.objects, Box::new(move |i| (parquet_key(i), bytes.clone())))
        }
        Kind::Shards => {
            let (samples, size) = (spec.shard_samples, spec.size);
            (
                spec.objects,
                Box::new(move |i| {
                    let mut out = Vec::new();
                    quarry_datasets::shards::write_tar(42, i as u64, samples, size, &mut out).expect("writing to memory");
                    (shard_key(i), Bytes::from(out))
                }),
            )
        }
        Kind::Put | Kind::Delete => return Ok(()),
    };
    let make = Arc::new(make);
    let workers = 8.min(count.max(1));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (ep, make, spec) = (ep.clone(), make.clone(), spec.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::new(ep);
            for i in (w..count).step_by(workers) {
                let (k, body) = make(i);
                put(&mut c, &spec, &k, body).await.with_context(|| format!("preparing {k}"))?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Drive `spec` against `ep` for its duration.
pub async fn run(ep: &Arc<Endpoint>, spec: &Spec) -> Outcome {
    let deadline = Instant::now() + spec.duration;
    let body = if matches!(spec.kind, Kind::Put | Kind::Delete | Kind::Mixed) {
        payload(spec.size)
    } else {
        Bytes::new()
    };
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..spec.concurrency {
        let (ep, spec, body) = (ep.clone(), spec.clone(), body.clone());
        tasks.push(tokio::spawn(async move { worker(ep, spec, body, w, deadline).await }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        if let Ok(o) = t.await {
            total.merge(o);
        }
    }
    total.elapsed_s = start.elapsed().as_secs_f64();
    total
}

async fn worker(ep: Arc<Endpoint>, spec: Spec, body: Bytes, w: usize, deadline: Instant) -> Outcome {
    let mut c = Conn::new(ep);
    let mut out = Outcome::default();
    let mut n = 0usize;
    let mut written: Vec<String> = Vec::new();
    let list_max = spec.objects.clamp(1, 1000).to_string();
    let objects = spec.objects.max(1);
    // Each training reader walks its own shuffled order of the shards, as a loader's sampler does.
    let mut order: Vec<usize> = (0..objects).collect();
    order.shuffle(&mut rand::rng());
    // PUTs create new keys in every round (a round-unique prefix), as ingest does; an
    // overwrite pays for keeping the old version safe until the new one is durable.
    let run: u32 = rand::random();
    while Instant::now() < deadline {
        n += 1;
        let read_key = key(rand::rng().random_range(0..objects));
        let own_key = format!("w{w}-{run:08x}/{n:010}");
        match spec.kind {
            Kind::Put => {
                let t = Instant::now();
                let r = put(&mut c, &spec, &own_key, body.clone()).await.map(|()| Resp {
                    status: 200,
                    ..Resp::default()
                });
                out.record("PUT", t, r, body.len() as u64);
            }
            Kind::Get => {
                let t = Instant::now();
                let r = c.send(Req::new("GET", &spec.bucket, Some(&read_key))).await;
                out.record("GET", t, r, 0);
            }
            Kind::RangeGet => {
                let len = spec.range_size.min(spec.size).max(1);
                let first = rand::rng().random_range(0..=spec.size.saturating_sub(len));
                let range = format!("bytes={first}-{}", first + len - 1);
                let t = Instant::now();
                let r = c
                    .send(Req {
                        headers: &[("range", &range)],
                        ..Req::new("GET", &spec.bucket, Some(&read_key))
                    })
                    .await;
                out.record("ranged GET", t, r, 0);
            }
            Kind::Head => {
                let t = Instant::now();
                let r = c.send(Req::new("HEAD", &spec.bucket, Some(&read_key))).await;
                out.record("HEAD", t, r, 0);
            }
            Kind::List => {
                let mut q: Vec<(&str, &str)> = vec![("list-type", "2"), ("max-keys", list_max.as_str())];
                // Without a delimiter each page starts after a random key, so pages come from
                // anywhere in the bucket (a deep page must cost what the first one does).
                let after = key(rand::rng().random_range(0..objects));
                match &spec.list_delimiter {
                    Some(d) => q.push(("delimiter", d.as_str())),
                    None => q.push(("start-after", after.as_str())),
                }
                let t = Instant::now();
                let r = c
                    .send(Req {
                        query: &q,
                        ..Req::new("GET", &spec.bucket, None)
                    })
                    .await;
                out.record("LIST", t, r, 0);
            }
            Kind::Delete => {
                // Each DELETE removes an object this worker PUT just before, untimed.
                if put(&mut c, &spec, &own_key, body.clone()).await.is_err() {
                    out.errors += 1;
                    continue;
                }
                let t = Instant::now();
                let r = c.send(Req::new("DELETE", &spec.bucket, Some(&own_key))).await;
                out.record("DELETE", t, r, 0);
            }
            Kind::Mixed => {
                let pick: u32 = rand::rng().random_range(0..100);
                let t = Instant::now();
                if pick < 45 {
                    let r = c.send(Req::new("GET", &spec.bucket, Some(&read_key))).await;
                    out.record("GET", t, r, 0);
                } else if pick < 75 {
                    let r = c.send(Req::new("HEAD", &spec.bucket, Some(&read_key))).await;
                    out.record("HEAD", t, r, 0);
                } else if pick < 90 || written.is_empty() {
                    let r = c
                        .send(Req {
                            body: body.clone(),
                            ..Req::new("PUT", &spec.bucket, Some(&own_key))
                        })
                        .await;
                    if out.record("PUT", t, r, body.len() as u64).is_some() {
                        written.push(own_key);
                    }
                } else {
                    let k = written.pop().expect("checked non-empty");
                    let r = c.send(Req::new("DELETE", &spec.bucket, Some(&k))).await;
                    out.record("DELETE", t, r, 0);
                }
            }
            Kind::Parquet => {
                let file = parquet_key(rand::rng().random_range(0..objects));
                scan_parquet(&mut c, &spec, &file, &mut out).await;
            }
            Kind::Shards => {
                let shard = shard_key(order[n % objects]);
                read_shard(&mut c, &spec, &shard, &mut out).await;
                if n.is_multiple_of(objects) {
                    order.shuffle(&mut rand::rng());
                }
            }
        }
    }
    out
}

/// One analytics read of a Parquet object, each request timed separately.
async fn scan_parquet(c: &mut Conn, spec: &Spec, key: &str, out: &mut Outcome) {
    let t = Instant::now();
    let r = c.send(Req::new("HEAD", &spec.bucket, Some(key))).await;
    let Some(head) = out.record("HEAD", t, r, 0) else { return };
    let Some(size) = head.content_length.filter(|s| *s >= 12) else {
        out.errors += 1;
        out.first_error
            .get_or_insert_with(|| format!("HEAD {key} gave no usable Content-Length"));
        return;
    };
    let t = Instant::now();
    let r = c
        .send_keep(Req {
            headers: &[("range", "bytes=-8")],
            ..Req::new("GET", &spec.bucket, Some(key))
        })
        .await;
    let Some(tail) = out.record("GET footer length", t, r, 0).and_then(|r| r.body) else {
        return;
    };
    if tail.len() != 8 || &tail[4..] != b"PAR1" {
        out.errors += 1;
        out.first_error
            .get_or_insert_with(|| format!("{key} does not end in a Parquet footer"));
        return;
    }
    let len = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
    let range = format!("bytes={}-{}", size.saturating_sub(len + 8), size - 9);
    let t = Instant::now();
    let r = c
        .send_keep(Req {
            headers: &[("range", &range)],
            ..Req::new("GET", &spec.bucket, Some(key))
        })
        .await;
    let Some(footer) = out.record("GET footer", t, r, 0).and_then(|r| r.body) else {
        return;
    };
    let meta = match parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&footer) {
        Ok(m) => m,
        Err(e) => {
            out.errors += 1;
            out.first_error.get_or_insert_with(|| format!("{key}: footer does not decode: {e}"));
            return;
        }
    };
    for rg in meta.row_groups() {
        for col in rg.columns().iter().take(spec.parquet_columns) {
            let start = col.dictionary_page_offset().unwrap_or(col.data_page_offset()).max(0) as u64;
            let range = format!("bytes={start}-{}", start + col.compressed_size().max(1) as u64 - 1);
            let t = Instant::now();
            let r = c
                .send(Req {
                    headers: &[("range", &range)],
                    ..Req::new("GET", &spec.bucket, Some(key))
                })
                .await;
            out.record("GET column chunk", t, r, 0);
        }
    }
}

/// One pass over a tar shard: a streaming GET of the whole object, or one ranged GET per
/// sample (the layout is fixed: header, padded data, header, padded label).
async fn read_shard(c: &mut Conn, spec: &Spec, key: &str, out: &mut Outcome) {
    if !spec.ranged {
        let t = Instant::now();
        let r = c.send(Req::new("GET", &spec.bucket, Some(key))).await;
        if out.record("GET shard", t, r, 0).is_some() {
            out.samples += spec.shard_samples;
        }
        return;
    }
    let padded = spec.size.div_ceil(512) * 512;
    let stride = (512 + padded + 512 + 512) as u64;
    for j in 0..spec.shard_samples {
        let first = j * stride + 512;
        let range = format!("bytes={first}-{}", first + spec.size.max(1) as u64 - 1);
        let t = Instant::now();
        let r = c
            .send(Req {
                headers: &[("range", &range)],
                ..Req::new("GET", &spec.bucket, Some(key))
            })
            .await;
        if out.record("GET sample", t, r, 0).is_some() {
            out.samples += 1;
        }
    }
}
