//! A minimal, fast S3 client for uploads and load generation: one keep-alive HTTP/1.1 connection per worker (TCP_NODELAY),
//! SigV4-signed with `UNSIGNED-PAYLOAD`, bodies counted and dropped.

use crate::sigv4::{self, Signer};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use std::sync::Arc;

/// Where requests go and how they are signed.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `host:port`.
    pub authority: String,
    pub signer: Signer,
    /// Whether large PUTs may use multipart uploads (a bare HTTP server cannot).
    pub multipart: bool,
}

impl Endpoint {
    /// Parse `http://host:port`.
    pub fn parse(url: &str, signer: Signer) -> Result<Self> {
        let rest = url.strip_prefix("http://").context("only http:// endpoints are supported")?;
        let authority = rest.trim_end_matches('/').to_owned();
        if authority.is_empty() || authority.contains('/') {
            bail!("endpoint must be http://host:port, got {url}");
        }
        Ok(Self {
            authority,
            signer,
            multipart: true,
        })
    }
}

/// A request to send.
pub struct Req<'a> {
    pub method: &'a str,
    pub bucket: &'a str,
    pub key: Option<&'a str>,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Bytes,
}

impl<'a> Req<'a> {
    /// A request without query, extra headers or body.
    pub fn new(method: &'a str, bucket: &'a str, key: Option<&'a str>) -> Self {
        Self {
            method,
            bucket,
            key,
            query: &[],
            headers: &[],
            body: Bytes::new(),
        }
    }
}

/// What came back: status, the body's byte count, and the headers and body a caller asked
/// to keep.
#[derive(Clone, Debug, Default)]
pub struct Resp {
    pub status: u16,
    pub bytes: u64,
    pub etag: Option<String>,
    pub content_length: Option<u64>,
    /// The body, when the request set `keep_body`.
    pub body: Option<Bytes>,
}

/// One connection to an endpoint; reconnects after errors.
pub struct Conn {
    ep: Arc<Endpoint>,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection that dials on first use.
    pub fn new(ep: Arc<Endpoint>) -> Self {
        Self { ep, sender: None }
    }

    async fn dial(&mut self) -> Result<&mut http1::SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let tcp = tokio::net::TcpStream::connect(&self.ep.authority)
                .await
                .with_context(|| format!("connect {}", self.ep.authority))?;
            tcp.set_nodelay(true)?;
            let (sender, conn) = http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("just dialed"))
    }

    /// Send `req`, read the whole response body and drop it, return status and size.
    pub async fn send(&mut self, req: Req<'_>) -> Result<Resp> {
        self.send_with(req, false).await
    }

    /// Send `req` and keep the response body.
    pub async fn send_keep(&mut self, req: Req<'_>) -> Result<Resp> {
        self.send_with(req, true).await
    }

    async fn send_with(&mut self, req: Req<'_>, keep_body: bool) -> Result<Resp> {
        let result = self.send_inner(req, keep_body).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn send_inner(&mut self, req: Req<'_>, keep_body: bool) -> Result<Resp> {
        let mut path = format!("/{}", sigv4::uri_encode(req.bucket, false));
        if let Some(k) = req.key {
            path.push('/');
            path.push_str(&sigv4::uri_encode(k, true));
        } else {
            path.push('/');
        }
        let date = sigv4::amz_date_now();
        let mut signed: Vec<(&str, &str)> = vec![
            ("host", &self.ep.authority),
            ("x-amz-content-sha256", sigv4::UNSIGNED_PAYLOAD),
            ("x-amz-date", &date),
        ];
        signed.extend_from_slice(req.headers);
        let auth = self
            .ep
            .signer
            .authorization(req.method, &path, req.query, &signed, sigv4::UNSIGNED_PAYLOAD, &date);
        let mut uri = path;
        if !req.query.is_empty() {
            uri.push('?');
            let q: Vec<String> = req
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", sigv4::uri_encode(k, false), sigv4::uri_encode(v, false)))
                .collect();
            uri.push_str(&q.join("&"));
        }
        let mut b = http::Request::builder().method(req.method).uri(uri).header("authorization", auth);
        for (k, v) in &signed {
            b = b.header(*k, *v);
        }
        let body_len = req.body.len();
        let request = b.header("content-length", body_len).body(Full::new(req.body))?;
        let sender = self.dial().await?;
        sender.ready().await?;
        let resp = sender.send_request(request).await?;
        let status = resp.status().as_u16();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let etag = header("etag");
        let content_length = header("content-length").and_then(|v| v.parse().ok());
        let mut body = resp.into_body();
        let mut bytes = 0u64;
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                bytes += data.len() as u64;
                if keep_body {
                    kept.extend_from_slice(&data);
                }
            }
        }
        Ok(Resp {
            status,
            bytes,
            etag,
            content_length,
            body: keep_body.then(|| Bytes::from(kept)),
        })
    }
}

fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

fn check(r: &Resp, what: &str) -> Result<()> {
    if (200..300).contains(&r.status) {
        Ok(())
    } else {
        bail!("{what} returned HTTP {}", r.status)
    }
}

impl Conn {
    /// Upload `data` as a multipart upload with parts of `part_size` bytes; returns the
    /// number of requests it took.
    pub async fn put_multipart(&mut self, bucket: &str, key: &str, data: Bytes, part_size: usize) -> Result<u64> {
        let r = self
            .send_keep(Req {
                query: &[("uploads", "")],
                ..Req::new("POST", bucket, Some(key))
            })
            .await?;
        check(&r, "CreateMultipartUpload")?;
        let body = r.body.unwrap_or_default();
        let xml = std::str::from_utf8(&body).context("CreateMultipartUpload answer is not UTF-8")?;
        let id = xml_value(xml, "UploadId")
            .context("CreateMultipartUpload answer has no UploadId")?
            .to_owned();
        let mut parts = String::from("<CompleteMultipartUpload>");
        let mut requests = 1;
        for (i, chunk) in data.chunks(part_size.max(5 << 20)).enumerate() {
            let n = (i + 1).to_string();
            let part = data.slice_ref(chunk);
            let r = self
                .send(Req {
                    query: &[("partNumber", &n), ("uploadId", &id)],
                    body: part,
                    ..Req::new("PUT", bucket, Some(key))
                })
                .await?;
            check(&r, "UploadPart")?;
            let etag = r.etag.context("UploadPart answer has no ETag")?;
            parts.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"));
            requests += 1;
        }
        parts.push_str("</CompleteMultipartUpload>");
        let r = self
            .send_keep(Req {
                query: &[("uploadId", &id)],
                body: Bytes::from(parts),
                ..Req::new("POST", bucket, Some(key))
            })
            .await?;
        check(&r, "CompleteMultipartUpload")?;
        // A Complete can fail after a 200 status line; the error is then in the body.
        if r.body.as_ref().is_some_and(|b| b.windows(7).any(|w| w == b"<Error>")) {
            bail!(
                "CompleteMultipartUpload failed: {}",
                String::from_utf8_lossy(r.body.as_deref().unwrap_or_default())
            );
        }
        Ok(requests + 1)
    }
}

impl Conn {
    /// The endpoint this connection talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }
}
