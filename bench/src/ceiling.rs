//! The physical ceiling: a trivial loopback HTTP server that answers every GET with the same
//! bytes an object GET would return, every PUT with 200, every HEAD with headers. Whatever a
//! real server reaches is reported as a fraction of this, measured in the same run.

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use std::convert::Infallible;

/// Serve on `address` until killed, answering GETs with `size` bytes.
pub async fn serve(address: &str, size: usize) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!("ceiling listening on http://{}", listener.local_addr()?);
    let payload = Bytes::from(vec![b'q'; size]);
    let list = Bytes::from_static(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>",
    );
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let payload = payload.clone();
        let list = list.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let payload = payload.clone();
                let list = list.clone();
                async move {
                    let method = req.method().clone();
                    let listing = req.uri().query().is_some_and(|q| q.contains("list-type"));
                    // Drain request bodies (PUTs) so the connection stays usable.
                    let _ = req.into_body().collect().await;
                    let body = match (method.as_str(), listing) {
                        ("GET", true) => list,
                        ("GET", false) => payload,
                        _ => Bytes::new(),
                    };
                    let mut resp = hyper::Response::new(Full::new(body));
                    if method == hyper::Method::DELETE {
                        *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tcp), svc).await;
        });
    }
}
