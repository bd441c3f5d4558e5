//! The HTTP listener: accepts connections (TCP_NODELAY on every socket: without it small
//! keep-alive responses stall on Nagle and delayed ACKs for ~40 ms), serves them with hyper
//! through s3s, and shuts down gracefully on SIGINT/SIGTERM.

use crate::config::{DEFAULT_ROOT_PASSWORD, DEFAULT_ROOT_USER, ServerArgs};
use crate::s3::Quarry;
use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use quarry_storage::Store;
use s3s::service::S3ServiceBuilder;
use std::time::Duration;
use tokio::net::TcpListener;

/// Run the server until a shutdown signal arrives.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let drives = args.drives.paths()?;
    let store = Store::open_set(drives.clone(), args.drives.store_options())
        .await
        .with_context(|| format!("opening drives {}", args.drives.drives.join(" ")))?;
    let layout = store.layout();
    tracing::info!(
        drives = drives.len(),
        data = layout.data(),
        parity = layout.parity(),
        io_engine = store.io().kind().as_str(),
        "erasure set ready ({} data + {} parity shards per block, I/O engine {})",
        layout.data(),
        layout.parity(),
        store.io().kind().as_str()
    );
    let scan = (args.heal_interval > 0).then(|| Duration::from_secs(args.heal_interval));
    tokio::spawn(store.clone().run_healer(scan));
    if !args.drives.fsync {
        tracing::warn!("fsync is off: acknowledged writes can be lost in a crash");
    }
    let (user, password) = match (args.root_user.clone(), args.root_password.clone()) {
        (Some(u), Some(p)) => (u, p),
        (None, None) => {
            tracing::warn!(
                "\n**********************************************************************\n\
                 * WARNING: no root credentials configured; using the DEFAULT keys    *\n\
                 *   access key: {DEFAULT_ROOT_USER}   secret key: {DEFAULT_ROOT_PASSWORD}              *\n\
                 * Anyone who knows them has full access. Set QUARRY_ROOT_USER and   *\n\
                 * QUARRY_ROOT_PASSWORD before exposing this server.                  *\n\
                 **********************************************************************"
            );
            (DEFAULT_ROOT_USER.to_owned(), DEFAULT_ROOT_PASSWORD.to_owned())
        }
        _ => anyhow::bail!("QUARRY_ROOT_USER and QUARRY_ROOT_PASSWORD must be set together"),
    };
    if user.len() < 3 || password.len() < 8 {
        anyhow::bail!("the root access key needs at least 3 characters and the secret at least 8");
    }

    let iam = crate::iam::api::Iam::open(store.clone(), user, password, args.sts_min_duration)
        .await
        .context("opening the identity store")?;
    let access_store = store.clone();
    let service = {
        let mut b = S3ServiceBuilder::new(Quarry::new(
            store,
            args.region.clone(),
            quarry_select::Engine::new(args.select_limits()),
            iam.clone(),
            args.default_object_ownership,
        ));
        b.set_auth(crate::auth::Keys::new(iam.clone()));
        b.set_access(crate::auth::Access::new(access_store, iam.clone(), args.default_object_ownership));
        if !args.domains.is_empty() {
            b.set_host(crate::host::Domains::new(&args.domains));
        }
        b.build()
    };

    let vhosts = std::sync::Arc::new(crate::host::Domains::new(&args.domains));
    let listener = TcpListener::bind(&args.address)
        .await
        .with_context(|| format!("binding {}", args.address))?;
    let local = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    println!("quarry listening on http://{local}");
    tracing::info!(address = %local, region = %args.region, drives = %args.drives.drives.join(" "), "serving S3");

    let http = ConnBuilder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let (socket, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        // Each request carries its peer's address, for `aws:SourceIp` in policies.
        // IAM and STS requests (told apart by their signed service name) go to the IAM API.
        let (svc, vhosts, iam) = (service.clone(), vhosts.clone(), iam.clone());
        let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            if crate::iam::api::is_iam_request(&req) {
                let iam = iam.clone();
                let fut: futures::future::BoxFuture<'static, Result<_, s3s::HttpError>> =
                    Box::pin(async move { Ok(iam.handle(req).await) });
                return fut;
            }
            req.extensions_mut().insert(crate::auth::PeerAddr(peer));
            let id = crate::request_id::new_id();
            if let Some(e) = crate::auth::v2_date_error(&req) {
                let fut: futures::future::BoxFuture<'static, Result<_, s3s::HttpError>> = Box::pin(async move {
                    let resp = e.to_http_response().unwrap_or_else(|_| http::Response::new(s3s::Body::empty()));
                    Ok(crate::request_id::stamp(resp, &id).await)
                });
                return fut;
            }
            crate::auth::v2_as_signed(&mut req, &vhosts);
            // A browser-form upload: note the file's name on the way through, for
            // `${filename}` in the form's key.
            let form = (req.method() == http::Method::POST)
                .then(|| {
                    req.headers()
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(crate::post_form::boundary)
                })
                .flatten();
            if let Some(boundary) = form {
                let (mut parts, body) = req.into_parts();
                let (body, name) = crate::post_form::Sniffer::new(body, &boundary);
                parts.extensions.insert(name.clone());
                let req = http::Request::from_parts(parts, s3s::Body::http_body_unsync(body));
                let svc = svc.clone();
                let fut: futures::future::BoxFuture<'static, Result<_, s3s::HttpError>> = Box::pin(async move {
                    let resp = crate::post_form::finish(svc.call(req).await?, &name).await;
                    Ok(crate::request_id::stamp(resp, &id).await)
                });
                return fut;
            }
            // A body of unknown length (`Transfer-Encoding: chunked`, no Content-Length, not
            // aws-chunked) is read into memory up to a bound, so that the upload's length
            // is known as S3 needs it; past the bound, 411 MissingContentLength as AWS.
            if unsized_upload(&req) {
                let (mut parts, body) = req.into_parts();
                let svc = svc.clone();
                let fut: futures::future::BoxFuture<'static, Result<_, s3s::HttpError>> = Box::pin(async move {
                    use http_body_util::BodyExt;
                    let resp = match http_body_util::Limited::new(body, MAX_UNSIZED_BODY).collect().await {
                        Ok(collected) => {
                            let bytes = collected.to_bytes();
                            parts.headers.remove(http::header::TRANSFER_ENCODING);
                            parts
                                .headers
                                .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(bytes.len()));
                            svc.call(http::Request::from_parts(parts, s3s::Body::from(bytes))).await?
                        }
                        Err(e) => {
                            let e = if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                                s3s::s3_error!(
                                    MissingContentLength,
                                    "A body sent without Content-Length may be at most {MAX_UNSIZED_BODY} bytes; send Content-Length"
                                )
                            } else {
                                s3s::s3_error!(IncompleteBody, "The request body could not be read")
                            };
                            e.to_http_response().unwrap_or_else(|_| http::Response::new(s3s::Body::empty()))
                        }
                    };
                    Ok(crate::request_id::stamp(resp, &id).await)
                });
                return fut;
            }
            let attributes = req.method() == http::Method::GET
                && req
                    .uri()
                    .query()
                    .is_some_and(|q| q.split('&').any(|p| p == "attributes" || p.starts_with("attributes=")));
            let call = hyper::service::Service::call(&svc, req);
            let fut: futures::future::BoxFuture<'static, Result<_, s3s::HttpError>> = Box::pin(async move {
                let mut resp = call.await?;
                if attributes {
                    resp = unquoted_attributes_etag(resp).await;
                }
                Ok(crate::request_id::stamp(resp, &id).await)
            });
            fut
        });
        let conn = http.serve_connection(TokioIo::new(socket), svc);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(Duration::from_secs(args.shutdown_grace)) => tracing::warn!("grace period over; closing remaining connections"),
    }
    Ok(())
}

/// The largest body accepted without a Content-Length (a `Transfer-Encoding: chunked`
/// upload that is not aws-chunked), held in memory while it is read.
pub const MAX_UNSIZED_BODY: usize = 16 << 20;

/// A PUT or POST whose body length is not declared: chunked transfer encoding without
/// Content-Length, and not aws-chunked (which declares `x-amz-decoded-content-length`).
fn unsized_upload<B>(req: &http::Request<B>) -> bool {
    let h = req.headers();
    matches!(*req.method(), http::Method::PUT | http::Method::POST)
        && !h.contains_key(http::header::CONTENT_LENGTH)
        && !h.contains_key("x-amz-decoded-content-length")
        && h.get(http::header::TRANSFER_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        && !h
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("STREAMING-"))
}

/// GetObjectAttributes names the ETag without quotes (unlike every other S3 answer), and
/// SDKs compare it as such; s3s quotes every XML ETag, so the answer's is unquoted here.
async fn unquoted_attributes_etag(resp: http::Response<s3s::Body>) -> http::Response<s3s::Body> {
    use http_body_util::BodyExt;
    if resp.status() != http::StatusCode::OK {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // The answer is a few hundred bytes, or a page of parts (at most 1000).
    let Ok(collected) = http_body_util::Limited::new(body, 1 << 20).collect().await else {
        return http::Response::from_parts(parts, s3s::Body::empty());
    };
    let bytes = collected.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let fixed = match (text.find("<ETag>\""), text.find("\"</ETag>")) {
        (Some(a), Some(b)) if a < b => format!("{}<ETag>{}</ETag>{}", &text[..a], &text[a + 7..b], &text[b + 8..]),
        _ => return http::Response::from_parts(parts, s3s::Body::from(bytes)),
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    http::Response::from_parts(parts, s3s::Body::from(fixed))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `quarry heal`: open the drives (refused while a server holds them), heal everything and
/// print what was found and fixed. Fails when something could not be healed.
pub async fn heal(args: crate::config::HealArgs) -> anyhow::Result<()> {
    let store = Store::open_set(args.drives.paths()?, args.drives.store_options())
        .await
        .with_context(|| format!("opening drives {}", args.drives.drives.join(" ")))?;
    let report = store.heal_all(args.deep).await?;
    println!("{report}");
    if !report.unrecoverable.is_empty() {
        anyhow::bail!("{} objects could not be healed", report.unrecoverable.len());
    }
    Ok(())
}
