//! Request ids, as S3 gives them: every response carries `x-amz-request-id` (and
//! `x-amz-id-2`), and an error's XML body names the same id in `<RequestId>`, so a client
//! can quote one id for a failed call whichever it logged. s3s does neither; the server
//! loop wraps each S3 response with [`stamp`].

use http_body_util::BodyExt;

/// Error bodies larger than this are passed on untouched (S3's are a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A fresh request id: 16 upper-case hex digits, as S3's.
pub fn new_id() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{n:016X}")
}

/// Add the request id headers to `resp`, and the id to an XML error body.
pub async fn stamp(resp: http::Response<s3s::Body>, id: &str) -> http::Response<s3s::Body> {
    let (mut parts, body) = resp.into_parts();
    if let Ok(v) = http::HeaderValue::from_str(id) {
        parts.headers.insert("x-amz-request-id", v.clone());
        parts.headers.entry("x-amz-id-2").or_insert(v);
    }
    let xml = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("xml"));
    let small = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_none_or(|n| n <= MAX_ERROR_BODY);
    if !(parts.status.is_client_error() || parts.status.is_server_error()) || !xml || !small {
        return http::Response::from_parts(parts, body);
    }
    let Ok(collected) = http_body_util::Limited::new(body, MAX_ERROR_BODY).collect().await else {
        return http::Response::from_parts(parts, s3s::Body::empty());
    };
    let bytes = collected.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let out = match with_id(&text, id) {
        Some(t) => t,
        None => return http::Response::from_parts(parts, s3s::Body::from(bytes)),
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    http::Response::from_parts(parts, s3s::Body::from(out))
}

/// `<RequestId>` added to an S3 `<Error>` document that has none.
fn with_id(xml: &str, id: &str) -> Option<String> {
    if xml.contains("<RequestId>") {
        return None;
    }
    let end = xml.rfind("</Error>")?;
    Some(format!("{}<RequestId>{id}</RequestId>{}", &xml[..end], &xml[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_id_once() {
        let e = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code></Error>";
        assert_eq!(
            with_id(e, "AB").unwrap(),
            "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><RequestId>AB</RequestId></Error>"
        );
        assert!(with_id("<Error><RequestId>x</RequestId></Error>", "AB").is_none());
        assert!(with_id("<ListBucketResult/>", "AB").is_none());
        let id = new_id();
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[tokio::test]
    async fn responses_carry_the_id_and_error_bodies_repeat_it() {
        let resp = http::Response::builder()
            .status(404)
            .header("content-type", "application/xml")
            .body(s3s::Body::from("<Error><Code>NoSuchKey</Code></Error>".to_owned()))
            .unwrap();
        let out = stamp(resp, "0123456789ABCDEF").await;
        assert_eq!(out.headers()["x-amz-request-id"], "0123456789ABCDEF");
        let body = out.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("<RequestId>0123456789ABCDEF</RequestId>"));
        let ok = http::Response::builder().status(200).body(s3s::Body::from("x".to_owned())).unwrap();
        assert_eq!(stamp(ok, "A").await.headers()["x-amz-request-id"], "A");
    }
}
