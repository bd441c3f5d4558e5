//! Credentials: who may sign requests (the root key, IAM users' keys, STS temporary
//! credentials), and authorisation of every S3 request: the root user may do anything;
//! users and sessions what their identity policies (narrowed by a session policy) or the
//! bucket's policy allow, an explicit Deny anywhere winning; anonymous requests exactly
//! what the bucket's policy grants to `"Principal": "*"`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};

use crate::iam::actions;
use crate::iam::api::{Iam, allows, identity_key, principal_arn};
use crate::iam::identity;
use crate::iam::policy::{Policy, Request, decide};

/// Secret keys for signature checks: the root key pair, IAM users' active keys and
/// unexpired temporary (STS) credentials, from the identity directory.
pub struct Keys {
    iam: Arc<Iam>,
}

impl Keys {
    pub fn new(iam: Arc<Iam>) -> Self {
        Self { iam }
    }
}

#[async_trait::async_trait]
impl S3Auth for Keys {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let dir = self.iam.directory();
        match dir.keys.get(access_key) {
            Some(c) if c.active => {
                if c.session.as_ref().is_some_and(|s| s.expires <= identity::now()) {
                    return Err(s3_error!(ExpiredToken, "The provided token has expired."));
                }
                Ok(SecretKey::from(c.secret.as_str()))
            }
            _ => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// Longest lifetime of a presigned SigV4 URL (seven days), as in S3.
const MAX_PRESIGNED_EXPIRES: u64 = 604_800;

/// The client's address, put in each request's extensions by the server loop.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Which keys a DeleteObjects request may delete, or a POST form may write (`key`, whether
/// a version is named), put in the request's extensions by [`Access`]; absent when the
/// caller may do anything.
#[derive(Clone)]
pub struct KeyGate(Arc<KeyCheck>);

/// `(key, version named) -> allowed`.
type KeyCheck = dyn Fn(&str, bool) -> bool + Send + Sync;

impl KeyGate {
    pub fn allows(&self, key: &str, version: bool) -> bool {
        (self.0)(key, version)
    }
}

/// SigV2 signs a path-style bucket request's resource as `/bucket/` (so do boto3 and AWS),
/// while the request line says `/bucket`; s3s canonicalises the path as sent. A V2-signed
/// request (header or presigned) to a bare `/bucket` is served as `/bucket/`, which names
/// the same bucket and canonicalises as the client signed it.
/// Virtual-host requests (their bucket is in the Host) are left alone: there a bare
/// `/name` is an object. A V2 presigned URL's `x-amz-security-token` query parameter is
/// also given to s3s as the header it was signed as.
pub fn v2_as_signed<B>(req: &mut http::Request<B>, vhosts: &crate::host::Domains) {
    let v2_header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"AWS "));
    let query = req.uri().query().unwrap_or("");
    let v2_query = query.split('&').any(|p| p.starts_with("AWSAccessKeyId="));
    if v2_query && !req.headers().contains_key("x-amz-security-token") {
        // A V2 presigned URL of temporary credentials carries the session token in the
        // query; the client signed it as an `x-amz-security-token` header (botocore's
        // HmacV1QueryAuth), which is how s3s canonicalises it.
        let token = query
            .split('&')
            .find_map(|p| p.strip_prefix("x-amz-security-token="))
            .map(query_decode)
            .and_then(|t| http::HeaderValue::from_str(&t).ok());
        if let Some(t) = token {
            req.headers_mut().insert("x-amz-security-token", t);
        }
    }
    let query = req.uri().query().unwrap_or("");
    let path = req.uri().path();
    if !(v2_header || v2_query) || path.len() < 2 || path[1..].contains('/') {
        return;
    }
    let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if vhosts.is_virtual_host(host) {
        return;
    }
    let pq = if query.is_empty() {
        format!("{path}/")
    } else {
        format!("{path}/?{query}")
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = pq.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// A bucket's compiled policy and the stored text it was compiled from.
type CompiledPolicy = (Arc<str>, Arc<Policy>);

/// Authorisation (see the module's text). Presigned URLs may not outlive S3's seven-day
/// limit, and carry the permissions of the key that signed them.
pub struct Access {
    store: quarry_storage::Store,
    iam: Arc<Iam>,
    /// Compiled bucket policies, keyed by bucket, with the text they were compiled from:
    /// a policy is compiled once per change, not per request.
    compiled: Mutex<HashMap<String, CompiledPolicy>>,
}

impl Access {
    pub fn new(store: quarry_storage::Store, iam: Arc<Iam>) -> Self {
        Self {
            store,
            iam,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The bucket's compiled policy, if it has one.
    fn bucket_policy(&self, bucket: &str) -> Option<Arc<Policy>> {
        let name = quarry_storage::BucketName::new(bucket).ok()?;
        let text = self.store.bucket_policy(&name).ok()??;
        let mut cache = self.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((t, p)) = cache.get(bucket)
            && Arc::ptr_eq(t, &text)
        {
            return Some(p.clone());
        }
        // Stored policies were validated when they were put; one that no longer parses
        // grants nothing.
        let policy = Arc::new(Policy::parse(&text, true).ok()?);
        cache.insert(bucket.to_string(), (text, policy.clone()));
        Some(policy)
    }
}

/// The value of tag `tag` (compared case-insensitively, as condition keys are) on the
/// object a request names (`versionId` included), for `s3:ExistingObjectTag/<tag>`.
fn existing_tag(
    store: &quarry_storage::Store,
    bucket: Option<&str>,
    key: Option<&str>,
    query: &[(&str, String)],
    tag: &str,
) -> Option<String> {
    let bucket = quarry_storage::BucketName::new(bucket?).ok()?;
    let key = quarry_storage::ObjectKey::new(key?).ok()?;
    let version = match query.iter().find(|(k, _)| *k == "versionId") {
        Some((_, v)) => Some(quarry_storage::VersionId::parse(v).ok()?),
        None => None,
    };
    let meta = store.head_object(&bucket, &key, version.as_ref()).ok()?;
    meta.attrs
        .tags
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(tag))
        .map(|(_, v)| v.clone())
}

/// A query value, decoded (malformed escapes are kept as they are).
fn query_decode(v: &str) -> String {
    let bytes = crate::s3::convert::form_decode(v, true).expect("lenient decoding always succeeds");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[async_trait::async_trait]
impl s3s::access::S3Access for Access {
    /// AWS replaces `${filename}` in a form's key with the uploaded file's name; s3s does
    /// not hand the file name on, so the server loop watched the form go by
    /// ([`crate::post_form`]).
    async fn post_object(&self, req: &mut s3s::S3Request<s3s::dto::PostObjectInput>) -> S3Result<()> {
        if req.input.key.contains("${filename}") {
            match req.extensions.get::<crate::post_form::FormFileName>().and_then(|f| f.key_part()) {
                Some(file) => req.input.key = req.input.key.replace("${filename}", &file),
                None => {
                    return Err(s3_error!(
                        InvalidArgument,
                        "the form's key uses ${{filename}} but its file has no name"
                    ));
                }
            }
        }
        // The object's key is known only now: authorise PutObject on it.
        if let Some(gate) = req.extensions.get::<KeyGate>()
            && !gate.allows(&req.input.key, false)
        {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        Ok(())
    }

    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        let peer = cx.extensions_mut().get::<PeerAddr>().copied();
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(q) = cx.uri().query() {
            for pair in q.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if k == "X-Amz-Expires" {
                    match v.parse::<u64>() {
                        Ok(secs) if (1..=MAX_PRESIGNED_EXPIRES).contains(&secs) => {}
                        _ => {
                            return Err(s3_error!(
                                AuthorizationQueryParametersError,
                                "X-Amz-Expires must be less than a week (in seconds) that is; 604800"
                            ));
                        }
                    }
                }
                query.push((k, query_decode(v)));
            }
        }
        let denied = || s3_error!(AccessDenied, "Access Denied");
        let dir = self.iam.directory();
        let cred = match cx.credentials() {
            None => None,
            Some(c) => {
                let cred = dir.keys.get(&c.access_key).ok_or_else(denied)?;
                if let Some(s) = &cred.session {
                    // Temporary credentials are good only with their session token.
                    let token = cx
                        .headers()
                        .get("x-amz-security-token")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                        .or_else(|| {
                            // SigV4 presigns it as X-Amz-Security-Token, SigV2 lower-case.
                            query
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-security-token"))
                                .map(|(_, v)| v.clone())
                        });
                    if token.is_none_or(|t| !crate::iam::sigv4::same_signature(&t, &s.token)) {
                        return Err(s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."));
                    }
                    if s.expires <= identity::now() {
                        return Err(s3_error!(ExpiredToken, "The provided token has expired."));
                    }
                } else if cred.principal.root {
                    return Ok(());
                }
                Some(cred)
            }
        };
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.as_ref()), None),
            S3Path::Object { bucket, key } => (Some(bucket.as_ref()), Some(key.as_ref())),
        };
        let policy = bucket.and_then(|b| self.bucket_policy(b));
        if cred.is_none() && policy.is_none() {
            return Err(denied());
        }
        let version = query.iter().any(|(k, v)| *k == "versionId" && !v.is_empty() && v != "null");
        // The request context holds only the keys the policies in play read (most read
        // none): building every key for every request cost more than evaluating.
        let session_policy = cred.and_then(|c| c.session.as_ref()).and_then(|s| s.policy.as_deref());
        let in_play = cred
            .into_iter()
            .flat_map(|c| c.principal.policies.iter().map(AsRef::as_ref))
            .chain(policy.as_deref())
            .chain(session_policy);
        let mut context: HashMap<String, Vec<String>> = HashMap::new();
        for p in in_play {
            for ck in p.needs() {
                if context.contains_key(ck) {
                    continue;
                }
                let value = match ck.as_str() {
                    "aws:securetransport" => Some("false".to_owned()),
                    "aws:currenttime" => time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok(),
                    "aws:epochtime" => Some(time::OffsetDateTime::now_utc().unix_timestamp().to_string()),
                    "aws:sourceip" => peer.map(|PeerAddr(a)| a.ip().to_canonical().to_string()),
                    "s3:x-amz-acl" => cx.headers().get("x-amz-acl").and_then(|v| v.to_str().ok()).map(str::to_owned),
                    "s3:prefix" | "s3:delimiter" | "s3:max-keys" | "s3:versionid" => {
                        let name = if ck == "s3:versionid" { "versionId" } else { &ck[3..] };
                        query.iter().find(|(q, _)| *q == name).map(|(_, v)| v.clone())
                    }
                    other => match other.strip_prefix("s3:existingobjecttag/") {
                        Some(tag) => existing_tag(&self.store, bucket, key, &query, tag),
                        None => cred.and_then(|c| identity_key(c, other)),
                    },
                };
                if let Some(v) = value {
                    context.insert(ck.clone(), vec![v]);
                }
            }
        }
        let principal = cred.map_or_else(|| "*".to_owned(), |c| principal_arn(c).to_owned());
        let op = cx.s3_op().name();
        let req = Request {
            action: actions::action(op, version),
            resource: actions::resource(bucket, key),
            principal,
            context,
        };
        // DeleteObjects is authorised key by key (s3:DeleteObject on each object), as on
        // AWS: refused keys come back as AccessDenied entries of a 200 answer. A POST
        // form's key is in its body: PutObject is checked in the `post_object` hook.
        if op == "DeleteObjects" || op == "PostObject" {
            let write = op == "PostObject";
            let (dir, access_key, policy, bucket) = (
                dir.clone(),
                cx.credentials().map(|c| c.access_key.clone()),
                policy.clone(),
                bucket.unwrap_or("").to_owned(),
            );
            let gate = KeyGate(Arc::new(move |key: &str, version: bool| {
                let r = Request {
                    action: actions::action(if write { "PutObject" } else { "DeleteObject" }, version),
                    resource: actions::resource(Some(&bucket), Some(key)),
                    ..req.clone()
                };
                match &access_key {
                    Some(k) => dir.keys.get(k).is_some_and(|c| allows(c, &r, policy.as_deref())),
                    None => policy.as_deref().is_some_and(|p| decide([p], &r)),
                }
            }));
            cx.extensions_mut().insert(gate);
            return Ok(());
        }
        let permits = |req: &Request, policy: Option<&Policy>| match cred {
            Some(c) => allows(c, req, policy),
            None => policy.is_some_and(|p| decide([p], req)),
        };
        if !permits(&req, policy.as_deref()) {
            return Err(denied());
        }
        // A copy also reads its source, which the caller must be allowed to read too.
        if matches!(op, "CopyObject" | "UploadPartCopy") {
            let header = cx.headers().get("x-amz-copy-source").and_then(|v| v.to_str().ok());
            let Some(s3s::dto::CopySource::Bucket { bucket, key, version_id }) = header.and_then(|h| s3s::dto::CopySource::parse(h).ok())
            else {
                return Err(denied());
            };
            let src_policy = self.bucket_policy(&bucket);
            let read = Request {
                action: actions::action("GetObject", version_id.is_some()),
                resource: actions::resource(Some(&bucket), Some(&key)),
                ..req
            };
            if !permits(&read, src_policy.as_deref()) {
                return Err(denied());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(uri: &str, host: &str, auth: Option<&str>) -> String {
        let mut b = http::Request::builder().uri(uri).header("host", host);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let mut req = b.body(()).unwrap();
        v2_as_signed(&mut req, &crate::host::Domains::new(&["s3.local".into()]));
        req.uri().to_string()
    }

    #[test]
    fn v2_bucket_requests_canonicalise_as_signed() {
        let v2 = Some("AWS key:sig");
        assert_eq!(rewritten("/bucket", "127.0.0.1:9000", v2), "/bucket/");
        assert_eq!(rewritten("/bucket?tagging", "127.0.0.1:9000", v2), "/bucket/?tagging");
        assert_eq!(
            rewritten("/bucket?AWSAccessKeyId=k&Signature=s", "127.0.0.1", None),
            "/bucket/?AWSAccessKeyId=k&Signature=s"
        );
        // Objects, the root, SigV4, and virtual-host requests are left as they are.
        assert_eq!(rewritten("/bucket/key", "127.0.0.1", v2), "/bucket/key");
        assert_eq!(rewritten("/", "127.0.0.1", v2), "/");
        assert_eq!(
            rewritten("/bucket", "127.0.0.1", Some("AWS4-HMAC-SHA256 Credential=...")),
            "/bucket"
        );
        assert_eq!(rewritten("/key", "bucket.s3.local:9000", v2), "/key");
    }

    #[test]
    fn v2_presigned_session_tokens_become_the_signed_header() {
        let mut req = http::Request::builder()
            .uri("/b/k?AWSAccessKeyId=ASIA1&Expires=1&Signature=s&x-amz-security-token=a%2Bb%2F")
            .header("host", "127.0.0.1")
            .body(())
            .unwrap();
        v2_as_signed(&mut req, &crate::host::Domains::new(&[]));
        assert_eq!(req.headers()["x-amz-security-token"], "a+b/");
    }

    #[test]
    fn query_values_decode() {
        assert_eq!(query_decode("a%2Fb+c%zz%"), "a/b c%zz%");
        assert_eq!(query_decode("%C3%BC"), "ü");
    }
}
