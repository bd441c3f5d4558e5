//! Workloads: what each worker does in its loop, and the preparation it needs.

use crate::client::{Conn, Endpoint, Req};
use anyhow::{Result, bail};
use bytes::Bytes;
use rand::Rng as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The operations a run can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Put,
    Get,
    Head,
    List,
    Delete,
    /// warp's mix: 45% GET, 30% HEAD (stat), 15% PUT, 10% DELETE of recent PUTs.
    Mixed,
}

impl Kind {
    /// Parse a workload name.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "put" => Self::Put,
            "get" => Self::Get,
            "head" | "stat" => Self::Head,
            "list" => Self::List,
            "delete" => Self::Delete,
            "mixed" => Self::Mixed,
            other => bail!("unknown workload {other:?} (put, get, head, stat, list, delete, mixed)"),
        })
    }

    /// Name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Get => "get",
            Self::Head => "head",
            Self::List => "list",
            Self::Delete => "delete",
            Self::Mixed => "mixed",
        }
    }
}

/// One measured configuration.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Spec {
    pub kind: Kind,
    pub size: usize,
    pub concurrency: usize,
    pub duration: Duration,
    /// Objects prepared for GET/HEAD/DELETE/LIST (LIST pages over all of them).
    pub objects: usize,
    pub bucket: String,
}

/// What one run measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub ops: u64,
    pub bytes: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    /// Per-operation latencies in milliseconds.
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
}

fn key(i: usize) -> String {
    format!("obj/{i:08}")
}

fn ok(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Create the bucket and the objects a workload reads.
pub async fn prepare(ep: &Arc<Endpoint>, spec: &Spec) -> Result<()> {
    let mut c = Conn::new(ep.clone());
    let r = c
        .send(Req {
            method: "PUT",
            bucket: &spec.bucket,
            key: None,
            query: &[],
            headers: &[],
            body: Bytes::new(),
        })
        .await?;
    if !ok(r.status) && r.status != 409 {
        bail!("creating bucket {} failed with HTTP {}", spec.bucket, r.status);
    }
    let needs = matches!(spec.kind, Kind::Get | Kind::Head | Kind::List | Kind::Mixed);
    if !needs {
        return Ok(());
    }
    let body = Bytes::from(payload(spec.size));
    let workers = 8.min(spec.objects.max(1));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let ep = ep.clone();
        let body = body.clone();
        let bucket = spec.bucket.clone();
        let n = spec.objects;
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::new(ep);
            for i in (w..n).step_by(workers) {
                let k = key(i);
                let r = c
                    .send(Req {
                        method: "PUT",
                        bucket: &bucket,
                        key: Some(&k),
                        query: &[],
                        headers: &[],
                        body: body.clone(),
                    })
                    .await?;
                if !ok(r.status) {
                    bail!("preparing {k} failed with HTTP {}", r.status);
                }
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn payload(size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    rand::rng().fill(&mut v[..]);
    v
}

/// Drive `spec` against `ep` for its duration.
pub async fn run(ep: &Arc<Endpoint>, spec: &Spec) -> Outcome {
    let deadline = Instant::now() + spec.duration;
    let body = Bytes::from(payload(spec.size));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..spec.concurrency {
        let ep = ep.clone();
        let spec = spec.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move { worker(ep, spec, body, w, deadline).await }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        if let Ok(o) = t.await {
            total.ops += o.ops;
            total.bytes += o.bytes;
            total.errors += o.errors;
            total.latencies_ms.extend(o.latencies_ms);
            if total.first_error.is_none() {
                total.first_error = o.first_error;
            }
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
    while Instant::now() < deadline {
        let pick: u32 = rand::rng().random_range(0..100);
        let op = match spec.kind {
            Kind::Mixed if pick < 45 => Kind::Get,
            Kind::Mixed if pick < 75 => Kind::Head,
            Kind::Mixed if pick < 90 || written.is_empty() => Kind::Put,
            Kind::Mixed => Kind::Delete,
            k => k,
        };
        let read_key = key(rand::rng().random_range(0..spec.objects.max(1)));
        let own_key = format!("w{w}/{n:010}");
        let (method, k, query, send): (&str, Option<String>, Vec<(&str, &str)>, Bytes) = match op {
            Kind::Put => ("PUT", Some(own_key.clone()), vec![], body.clone()),
            Kind::Get => ("GET", Some(read_key), vec![], Bytes::new()),
            Kind::Head => ("HEAD", Some(read_key), vec![], Bytes::new()),
            Kind::List => ("GET", None, vec![("list-type", "2"), ("max-keys", list_max.as_str())], Bytes::new()),
            Kind::Delete if spec.kind == Kind::Mixed => ("DELETE", written.pop(), vec![], Bytes::new()),
            // A DELETE run removes objects it wrote itself just before, untimed.
            Kind::Delete => {
                let r = c
                    .send(Req {
                        method: "PUT",
                        bucket: &spec.bucket,
                        key: Some(&own_key),
                        query: &[],
                        headers: &[],
                        body: body.clone(),
                    })
                    .await;
                if r.is_err() {
                    out.errors += 1;
                }
                ("DELETE", Some(own_key.clone()), vec![], Bytes::new())
            }
            Kind::Mixed => unreachable!("mixed resolves to a concrete operation"),
        };
        n += 1;
        let sent = send.len() as u64;
        let t = Instant::now();
        let r = c
            .send(Req {
                method,
                bucket: &spec.bucket,
                key: k.as_deref(),
                query: &query,
                headers: &[],
                body: send,
            })
            .await;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        match r {
            Ok(resp) if ok(resp.status) => {
                out.ops += 1;
                out.bytes += resp.bytes + sent;
                out.latencies_ms.push(ms);
                if op == Kind::Put && spec.kind == Kind::Mixed {
                    written.push(own_key);
                }
            }
            Ok(resp) => {
                out.errors += 1;
                out.first_error
                    .get_or_insert_with(|| format!("{method} returned HTTP {}", resp.status));
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| format!("{method}: {e:#}"));
            }
        }
    }
    out
}
