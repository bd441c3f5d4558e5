//! The physical ceiling: a trivial loopback HTTP server that keeps PUT bodies in a map and
//! answers GET (with `Range`) and HEAD from it, with no authentication, durability or
//! metadata. Served the same objects, it returns the same bytes a real server would, so
//! whatever a server reaches is reported as a fraction of this, measured in the same run by
//! the same client. GETs of keys never PUT answer `size` filler bytes; LIST answers a fixed
//! empty page.

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};

type Objects = Arc<RwLock<HashMap<String, Bytes>>>;

/// Resolve a `Range` header against a length: `bytes=a-b`, `bytes=a-`, `bytes=-n`.
pub fn resolve_range(header: &str, len: usize) -> Option<std::ops::Range<usize>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: usize = n.parse().ok()?;
            len.saturating_sub(n)..len
        }
        (a, "") => a.parse().ok()?..len,
        (a, b) => a.parse().ok()?..(b.parse::<usize>().ok()? + 1).min(len),
    };
    (r.start < r.end && r.start < len).then_some(r)
}

/// Serve on `address` until killed.
pub async fn serve(address: &str, size: usize) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!("ceiling listening on http://{}", listener.local_addr()?);
    let filler = Bytes::from(vec![b'q'; size]);
    let objects: Objects = Arc::default();
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (filler, objects) = (filler.clone(), objects.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (filler, objects) = (filler.clone(), objects.clone());
                async move { Ok::<_, Infallible>(answer(req, &filler, &objects).await) }
            });
            let _ = http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tcp), svc).await;
        });
    }
}

async fn answer(req: hyper::Request<hyper::body::Incoming>, filler: &Bytes, objects: &Objects) -> hyper::Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let listing = req.uri().query().is_some_and(|q| q.contains("list-type"));
    let range = req.headers().get("range").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let status = |s: u16| hyper::StatusCode::from_u16(s).expect("valid status");
    match method.as_str() {
        "PUT" => {
            objects.write().expect("lock").insert(path, body);
            hyper::Response::new(Full::new(Bytes::new()))
        }
        "DELETE" => {
            objects.write().expect("lock").remove(&path);
            let mut r = hyper::Response::new(Full::new(Bytes::new()));
            *r.status_mut() = status(204);
            r
        }
        "GET" if listing => hyper::Response::new(Full::new(Bytes::from_static(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>",
        ))),
        "GET" | "HEAD" => {
            let obj = objects.read().expect("lock").get(&path).cloned().unwrap_or_else(|| filler.clone());
            let len = obj.len();
            let (part, code) = match range.as_deref().map(|h| resolve_range(h, len)) {
                None => (obj, 200),
                Some(Some(r)) => (obj.slice(r), 206),
                Some(None) => (Bytes::new(), 416),
            };
            let n = part.len();
            let body = if method == hyper::Method::HEAD { Bytes::new() } else { part };
            let mut r = hyper::Response::new(Full::new(body));
            *r.status_mut() = status(code);
            r.headers_mut().insert("content-length", n.into());
            r
        }
        _ => hyper::Response::new(Full::new(Bytes::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_range;

    #[test]
    fn ranges() {
        assert_eq!(resolve_range("bytes=0-9", 100), Some(0..10));
        assert_eq!(resolve_range("bytes=90-", 100), Some(90..100));
        assert_eq!(resolve_range("bytes=-8", 100), Some(92..100));
        assert_eq!(resolve_range("bytes=95-200", 100), Some(95..100));
        assert_eq!(resolve_range("bytes=100-", 100), None);
        assert_eq!(resolve_range("bits=1-2", 100), None);
    }
}
