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
}

impl Endpoint {
    /// Parse `http://host:port`.
    pub fn parse(url: &str, signer: Signer) -> Result<Self> {
        let rest = url.strip_prefix("http://").context("only http:// endpoints are supported")?;
        let authority = rest.trim_end_matches('/').to_owned();
        if authority.is_empty() || authority.contains('/') {
            bail!("endpoint must be http://host:port, got {url}");
        }
        Ok(Self { authority, signer })
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

/// What came back: status and the body's byte count.
#[derive(Clone, Copy, Debug)]
pub struct Resp {
    pub status: u16,
    pub bytes: u64,
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

    /// Send `req`, read the whole response body, return status and size.
    pub async fn send(&mut self, req: Req<'_>) -> Result<Resp> {
        let result = self.send_inner(req).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn send_inner(&mut self, req: Req<'_>) -> Result<Resp> {
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
        let mut body = resp.into_body();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                bytes += data.len() as u64;
            }
        }
        Ok(Resp { status, bytes })
    }
}
