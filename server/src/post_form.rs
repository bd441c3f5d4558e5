//! The file name of a browser-form POST upload, for `${filename}` in the form's key. s3s
//! parses the multipart form but does not hand the file's name on, so the server loop wraps
//! the body of a `multipart/form-data` POST in [`Sniffer`], which passes every byte through
//! unchanged and records the `filename` of the part named `file` in a [`FormFileName`]
//! (put in the request's extensions). s3s reads the whole form before PostObject reaches
//! the access hook, so the name is known there.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The file name seen in the form, once the file part's headers have gone by.
#[derive(Clone, Default)]
pub struct FormFileName(Arc<Mutex<Option<Option<String>>>>);

impl FormFileName {
    /// `Some(name)` when the file part was seen (`Some(None)`: it has no filename).
    pub fn get(&self) -> Option<Option<String>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// The multipart boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// A body that watches a multipart form go by (see the module's text).
pub struct Sniffer<B> {
    inner: B,
    /// `--boundary\r\n`.
    delimiter: Vec<u8>,
    /// Bytes not yet known to hold no part header.
    buf: Vec<u8>,
    found: FormFileName,
    done: bool,
}

/// Stop looking after this many bytes of fields (s3s refuses larger field sets anyway).
const MAX_SCAN: usize = 21 * 1024 * 1024;

impl<B> Sniffer<B> {
    pub fn new(inner: B, boundary: &str) -> (Self, FormFileName) {
        let found = FormFileName::default();
        let s = Sniffer {
            inner,
            delimiter: format!("--{boundary}\r\n").into_bytes(),
            buf: Vec::new(),
            found: found.clone(),
            done: false,
        };
        (s, found)
    }

    fn scan(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            let Some(i) = find(&self.buf[pos..], &self.delimiter).map(|i| pos + i) else {
                // Keep what could be the start of a delimiter split across chunks.
                let keep = self.buf.len().saturating_sub(self.delimiter.len());
                self.buf.drain(..keep.max(pos).min(self.buf.len()));
                break;
            };
            let head = i + self.delimiter.len();
            let Some(end) = find(&self.buf[head..], b"\r\n\r\n").map(|e| head + e) else {
                self.buf.drain(..i);
                break;
            };
            let headers = String::from_utf8_lossy(&self.buf[head..end]).into_owned();
            if let Some(filename) = file_part(&headers) {
                *self.found.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(filename);
                self.done = true;
                self.buf = Vec::new();
                return;
            }
            pos = end;
        }
        if self.buf.len() > MAX_SCAN {
            self.done = true;
            self.buf = Vec::new();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// For the headers of the part named `file`: its `filename` (or `None` without one).
/// `None` for other parts.
fn file_part(headers: &str) -> Option<Option<String>> {
    let cd = headers.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("content-disposition").then_some(v)
    })?;
    let mut name = None;
    let mut filename = None;
    for p in cd.split(';').skip(1) {
        let Some((k, v)) = p.trim().split_once('=') else { continue };
        let v = v.trim().trim_matches('"').to_owned();
        match k.trim() {
            "name" => name = Some(v),
            "filename" => filename = Some(v),
            _ => {}
        }
    }
    (name.as_deref() == Some("file")).then_some(filename)
}

impl<B> Body for Sniffer<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if !this.done
            && let Poll::Ready(Some(Ok(frame))) = &r
            && let Some(data) = frame.data_ref()
        {
            let data = data.clone();
            this.scan(&data);
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl FormFileName {
    /// What `${filename}` becomes: the file's name without any directory part (older
    /// browsers sent whole paths); `None` when the form's file has no name.
    pub fn key_part(&self) -> Option<String> {
        let n = self.get().flatten()?;
        let base = n.rsplit(['/', '\\']).next().unwrap_or(&n).to_owned();
        (!base.is_empty()).then_some(base)
    }
}

/// Make a form upload's answer what AWS sends: `${filename}` expanded in a 201
/// PostResponse and a 303 redirect (s3s builds them from the form's key as given), and a
/// failed policy condition as 403 AccessDenied (see [`condition_failure_as_aws`]).
pub async fn finish(resp: http::Response<s3s::Body>, name: &FormFileName) -> http::Response<s3s::Body> {
    use http_body_util::BodyExt;
    let Some(file) = name.key_part() else {
        return condition_failure_as_aws(resp).await;
    };
    match resp.status() {
        http::StatusCode::CREATED => {
            let (mut parts, body) = resp.into_parts();
            let Ok(bytes) = body.collect().await.map(|c| c.to_bytes()) else {
                return http::Response::from_parts(parts, s3s::Body::empty());
            };
            let escaped = file.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            let text = String::from_utf8_lossy(&bytes).replace("${filename}", &escaped);
            parts.headers.remove(http::header::CONTENT_LENGTH);
            http::Response::from_parts(parts, s3s::Body::from(text))
        }
        http::StatusCode::SEE_OTHER => {
            let (mut parts, body) = resp.into_parts();
            let location = parts.headers.get(http::header::LOCATION).and_then(|v| v.to_str().ok());
            let fixed = location
                .map(|l| l.replace("%24%7Bfilename%7D", &crate::iam::sigv4::uri_encode(&file, false)))
                .and_then(|l| http::HeaderValue::from_str(&l).ok());
            if let Some(v) = fixed {
                parts.headers.insert(http::header::LOCATION, v);
            }
            http::Response::from_parts(parts, body)
        }
        _ => condition_failure_as_aws(resp).await,
    }
}

/// s3s answers a form whose fields break its policy's conditions with 400
/// InvalidPolicyDocument; AWS answers 403 AccessDenied, "Invalid according to Policy: ...".
/// Rewrites those answers (a malformed policy stays 400 InvalidPolicyDocument).
pub async fn condition_failure_as_aws(resp: http::Response<s3s::Body>) -> http::Response<s3s::Body> {
    use http_body_util::BodyExt;
    if resp.status() != http::StatusCode::BAD_REQUEST {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = body.collect().await.map(|c| c.to_bytes()) else {
        return http::Response::from_parts(parts, s3s::Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    let message = text
        .split("<Message>")
        .nth(1)
        .and_then(|m| m.split("</Message>").next())
        .unwrap_or("");
    let condition = text.contains("<Code>InvalidPolicyDocument</Code>")
        && (message.contains("Policy condition")
            || message.contains("list of policy conditions")
            || message.contains("does not match bucket"));
    if !condition {
        return http::Response::from_parts(parts, s3s::Body::from(bytes));
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Invalid according to Policy: {message}</Message></Error>"
    );
    parts.status = http::StatusCode::FORBIDDEN;
    parts.headers.remove(http::header::CONTENT_LENGTH);
    http::Response::from_parts(parts, s3s::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn form(filename: Option<&str>) -> Vec<u8> {
        let fname = filename.map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/${{filename}}\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nname=\"file\"; filename=\"evil\"\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"file\"{fname}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n"
        )
        .into_bytes()
    }

    async fn sniff(bytes: Vec<u8>, chunk: usize) -> (Vec<u8>, Option<Option<String>>) {
        let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> =
            bytes.chunks(chunk).map(|c| Ok(Frame::data(Bytes::copy_from_slice(c)))).collect();
        let body = http_body_util::StreamBody::new(futures::stream::iter(chunks));
        let (s, found) = Sniffer::new(body, "XyZ");
        let out = s.collect().await.unwrap().to_bytes().to_vec();
        (out, found.get())
    }

    #[tokio::test]
    async fn the_file_parts_name_is_found_across_any_chunking() {
        let bytes = form(Some("photo 1.jpg"));
        for chunk in [1, 2, 3, 7, 16, 64, bytes.len()] {
            let (out, found) = sniff(bytes.clone(), chunk).await;
            assert_eq!(out, bytes, "bytes pass through unchanged");
            assert_eq!(found, Some(Some("photo 1.jpg".into())), "chunk {chunk}");
        }
        assert_eq!(sniff(form(None), 5).await.1, Some(None));
    }

    #[test]
    fn boundaries_come_from_the_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=XyZ").as_deref(), Some("XyZ"));
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
    }
}
