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

use crate::iam::acl::{Acl, Ownership, Permission, Who};
use crate::iam::actions;
use crate::iam::api::{Iam, allows, identity_key, principal_arn};
use crate::iam::identity::{self, Credential};
use crate::iam::policy::{Decision, Policy, Request};

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

/// Largest difference between a SigV2 request's date and the server's clock (AWS: 15 min).
const MAX_V2_SKEW_SECS: i64 = 900;

/// The error AWS answers a SigV2 header-signed request whose date is missing or
/// unreadable (403 AccessDenied) or more than 15 minutes from the server's clock (403
/// RequestTimeTooSkewed); s3s checks neither, so a captured request would otherwise be
/// good forever. `x-amz-date` wins over `Date`, as it does in the string to sign.
pub fn v2_date_error<B>(req: &http::Request<B>) -> Option<s3s::S3Error> {
    let h = req.headers();
    if !h.get(http::header::AUTHORIZATION)?.as_bytes().starts_with(b"AWS ") {
        return None;
    }
    let date = h
        .get("x-amz-date")
        .or_else(|| h.get(http::header::DATE))
        .and_then(|v| v.to_str().ok());
    let parsed = date.and_then(parse_v2_date).filter(|t| t.year() >= 1970);
    let Some(t) = parsed else {
        return Some(s3_error!(
            AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header"
        ));
    };
    let skew = (time::OffsetDateTime::now_utc() - t).whole_seconds().abs();
    (skew > MAX_V2_SKEW_SECS).then(|| {
        s3_error!(
            RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large."
        )
    })
}

/// A SigV2 request date: an HTTP date (`GMT`, as boto3 sends), RFC 2822 with a numeric
/// zone (`+0000`, as s3cmd sends), or ISO 8601 basic (`20261201T160524Z`).
fn parse_v2_date(s: &str) -> Option<time::OffsetDateTime> {
    if let Some(t) = crate::s3::convert::parse_http_date(s) {
        return Some(t.into());
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822) {
        return Some(t);
    }
    let basic = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, basic)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// A bucket's compiled policy and the stored text it was compiled from.
type CompiledPolicy = (Arc<str>, Arc<Policy>);
/// A bucket's parsed ACL and the stored text it was parsed from.
type ParsedAcl = (Arc<str>, Arc<Acl>);

/// Authorisation (see the module's text). Presigned URLs may not outlive S3's seven-day
/// limit, and carry the permissions of the key that signed them.
pub struct Access {
    store: quarry_storage::Store,
    iam: Arc<Iam>,
    /// Compiled bucket policies, keyed by bucket, with the text they were compiled from:
    /// a policy is compiled once per change, not per request.
    compiled: Mutex<HashMap<String, CompiledPolicy>>,
    /// Parsed bucket ACLs, the same way.
    acls: Mutex<HashMap<String, ParsedAcl>>,
    /// Object Ownership of buckets that have none set.
    default_ownership: Ownership,
}

impl Access {
    pub fn new(store: quarry_storage::Store, iam: Arc<Iam>, default_ownership: Ownership) -> Self {
        Self {
            store,
            iam,
            compiled: Mutex::new(HashMap::new()),
            acls: Mutex::new(HashMap::new()),
            default_ownership,
        }
    }

    /// The bucket `name` as the authoriser needs it.
    fn target(&self, name: &str) -> Target {
        let Some(info) = quarry_storage::BucketName::new(name)
            .ok()
            .and_then(|b| self.store.head_bucket(&b).ok())
        else {
            return Target {
                name: name.to_owned(),
                owner: None,
                policy: None,
                acls_on: false,
                acl: None,
            };
        };
        let b = quarry_storage::BucketName::new(name).expect("validated above");
        let ownership = crate::iam::acl::bucket_ownership(&self.store, &b, self.default_ownership);
        let acl = if ownership.acls_enabled() { self.bucket_acl(&b) } else { None };
        Target {
            name: name.to_owned(),
            owner: Some(info.owner.unwrap_or_else(|| identity::ACCOUNT_ID.to_owned())),
            // Loaded by `with_policy`, once the owning root (who needs none) is out of the way.
            policy: None,
            acls_on: ownership.acls_enabled(),
            acl,
        }
    }

    /// `t` with its bucket policy.
    fn with_policy(&self, mut t: Target) -> Target {
        if t.owner.is_some() {
            t.policy = self.bucket_policy(&t.name);
        }
        t
    }

    fn bucket_acl(&self, b: &quarry_storage::BucketName) -> Option<Arc<Acl>> {
        let text = self.store.bucket_config(b, quarry_storage::BucketConfig::Acl).ok()??;
        let mut cache = self.acls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((t, a)) = cache.get(b.as_str())
            && Arc::ptr_eq(t, &text)
        {
            return Some(a.clone());
        }
        let acl = Arc::new(Acl::from_json(&text));
        cache.insert(b.to_string(), (text, acl.clone()));
        Some(acl)
    }

    /// Whether the object (version) a request names exists (a delete marker does not).
    fn object_exists(&self, bucket: &str, key: &str, version: Option<&str>) -> bool {
        let (Ok(b), Ok(k)) = (quarry_storage::BucketName::new(bucket), quarry_storage::ObjectKey::new(key)) else {
            return true;
        };
        let v = match version {
            Some(v) if !v.is_empty() => match quarry_storage::VersionId::parse(v) {
                Ok(v) => Some(v),
                Err(_) => return true,
            },
            _ => None,
        };
        !matches!(
            self.store.head_object(&b, &k, v.as_ref()),
            Err(quarry_storage::Error::NoSuchKey { .. }
                | quarry_storage::Error::NoSuchVersion { .. }
                | quarry_storage::Error::DeleteMarker { .. })
        )
    }

    /// The owner and ACL of the object (version) a request names.
    fn object_acl(&self, t: &Target, key: &str, version: Option<&str>) -> ObjectAcl {
        let found = (|| {
            let b = quarry_storage::BucketName::new(&t.name).ok()?;
            let k = quarry_storage::ObjectKey::new(key).ok()?;
            let v = match version {
                Some(v) if !v.is_empty() => Some(quarry_storage::VersionId::parse(v).ok()?),
                _ => None,
            };
            self.store.head_object(&b, &k, v.as_ref()).ok()
        })();
        match found {
            None => ObjectAcl::default(),
            Some(meta) => ObjectAcl {
                owner: meta.attrs.owner.clone(),
                acl: meta.attrs.acl.as_deref().map(Acl::from_json),
                exists: true,
            },
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

/// The tags a write asks for in `x-amz-tagging` (a URL-encoded query), for
/// `s3:RequestObjectTag/<key>` and `s3:RequestObjectTagKeys`.
fn request_tags(headers: &http::HeaderMap) -> Vec<(String, String)> {
    let Some(v) = headers.get("x-amz-tagging").and_then(|v| v.to_str().ok()) else {
        return Vec::new();
    };
    v.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (query_decode(k), query_decode(v))
        })
        .collect()
}

/// An `s3:x-amz-*` condition key: the request header of that name. `x-amz-copy-source`
/// is compared as AWS does, `bucket/key` decoded and without a leading slash (nor the
/// `?versionId=` suffix).
fn request_header_key(headers: &http::HeaderMap, header: &str) -> Option<String> {
    let v = headers.get(header)?.to_str().ok()?;
    if header == "x-amz-copy-source" {
        let path = v.split_once("?versionId=").map_or(v, |(p, _)| p);
        let path = path.strip_prefix('/').unwrap_or(path);
        let bytes = crate::s3::convert::form_decode(path, false)?;
        return String::from_utf8(bytes).ok();
    }
    Some(v.to_owned())
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
        let uri = cx.uri().clone();
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(q) = uri.query() {
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
                }
                Some(cred)
            }
        };
        if let Some(c) = cred {
            cx.extensions_mut().insert(Caller {
                account: c.principal.account.clone(),
            });
        }
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.as_ref()), None),
            S3Path::Object { bucket, key } => (Some(bucket.as_ref()), Some(key.as_ref())),
        };
        let op = cx.s3_op().name();
        // CreateBucket is the caller's own account's business (a taken name answers
        // BucketAlreadyExists from the handler, whoever owns it).
        let target = bucket.filter(|_| op != "CreateBucket").map(|b| self.target(b));
        // A request that expects another owner of the bucket is refused, as AWS refuses it.
        if let (Some(t), Some(want)) = (&target, cx.headers().get("x-amz-expected-bucket-owner"))
            && t.owner.as_deref().is_some_and(|o| o.as_bytes() != want.as_bytes())
        {
            return Err(denied());
        }
        let root_of_owner = cred
            .is_some_and(|c| c.principal.root && c.session.is_none() && target.as_ref().is_none_or(|t| t.owned_by(&c.principal.account)));
        let is_copy = matches!(op, "CopyObject" | "UploadPartCopy");
        if root_of_owner && !is_copy && target.as_ref().is_none_or(|t| !t.acls_on) {
            // The owning account's root may do anything with what the account owns.
            return Ok(());
        }
        let target = target.map(|t| self.with_policy(t));
        // Nothing can grant an anonymous caller access to an existing bucket without a
        // policy or ACLs; a missing bucket answers NoSuchBucket to anyone, as on AWS.
        let no_access = target
            .as_ref()
            .is_some_and(|t| t.owner.is_some() && t.policy.is_none() && !t.acls_on);
        if cred.is_none() && (target.is_none() || no_access) {
            return Err(denied());
        }
        let version_id = query.iter().find(|(k, _)| *k == "versionId").map(|(_, v)| v.as_str());
        let version = version_id.is_some_and(|v| !v.is_empty() && v != "null");
        // The request context holds only the keys the policies in play read (most read
        // none): building every key for every request cost more than evaluating.
        let session_policy = cred.and_then(|c| c.session.as_ref()).and_then(|s| s.policy.as_deref());
        let in_play = cred
            .into_iter()
            .flat_map(|c| c.principal.policies.iter().map(AsRef::as_ref))
            .chain(target.as_ref().and_then(|t| t.policy.as_deref()))
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
                    "aws:referer" | "aws:useragent" => {
                        let name = if ck == "aws:referer" { "referer" } else { "user-agent" };
                        cx.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
                    }
                    "s3:requestobjecttagkeys" => {
                        let tags = request_tags(cx.headers());
                        if !tags.is_empty() {
                            context.insert(ck.clone(), tags.into_iter().map(|(k, _)| k).collect());
                        }
                        continue;
                    }
                    other => {
                        if let Some(tag) = other.strip_prefix("s3:existingobjecttag/") {
                            existing_tag(&self.store, bucket, key, &query, tag)
                        } else if let Some(tag) = other.strip_prefix("s3:requestobjecttag/") {
                            request_tags(cx.headers())
                                .into_iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                                .map(|(_, v)| v)
                        } else if let Some(header) = other.strip_prefix("s3:").filter(|h| h.starts_with("x-amz-")) {
                            request_header_key(cx.headers(), header)
                        } else {
                            cred.and_then(|c| identity_key(c, other))
                        }
                    }
                };
                if let Some(v) = value {
                    context.insert(ck.clone(), vec![v]);
                }
            }
        }
        let principal = cred.map_or_else(|| "*".to_owned(), |c| principal_arn(c).to_owned());
        // A read of an object that does not exist is judged as a listing of its name
        // (s3:ListBucket with s3:prefix = the key), as on AWS: who may list learns that it
        // is missing (404), anyone else gets 403 and learns nothing.
        let missing_read = !root_of_owner
            && matches!(op, "GetObject" | "HeadObject")
            && target.as_ref().is_some_and(|t| t.owner.is_some())
            && key.is_some_and(|k| !self.object_exists(bucket.unwrap_or(""), k, version_id));
        let req = if missing_read {
            context.insert("s3:prefix".into(), vec![key.unwrap_or("").to_owned()]);
            Request {
                action: "s3:ListBucket".into(),
                resource: actions::resource(bucket, None),
                principal,
                context,
            }
        } else {
            Request {
                action: actions::action(op, version),
                resource: actions::resource(bucket, key),
                principal,
                context,
            }
        };
        let caller = cred.map(|c| c.principal.account.clone());
        // DeleteObjects is authorised key by key (s3:DeleteObject on each object), as on
        // AWS: refused keys come back as AccessDenied entries of a 200 answer. A POST
        // form's key is in its body: PutObject is checked in the `post_object` hook.
        if op == "DeleteObjects" || op == "PostObject" {
            let write = op == "PostObject";
            let (dir, access_key, target, bucket) = (
                dir.clone(),
                cx.credentials().map(|c| c.access_key.clone()),
                target.clone(),
                bucket.unwrap_or("").to_owned(),
            );
            let gate = KeyGate(Arc::new(move |key: &str, version: bool| {
                let r = Request {
                    action: actions::action(if write { "PutObject" } else { "DeleteObject" }, version),
                    resource: actions::resource(Some(&bucket), Some(key)),
                    ..req.clone()
                };
                let cred = match &access_key {
                    Some(k) => match dir.keys.get(k) {
                        Some(c) => Some(c),
                        None => return false,
                    },
                    None => None,
                };
                permits(cred, &r, target.as_ref(), Need::Bucket(Permission::Write))
            }));
            cx.extensions_mut().insert(gate);
            return Ok(());
        }
        if !root_of_owner {
            let need = match (acl_need(op), target.as_ref(), key) {
                _ if missing_read => Need::Bucket(Permission::Read),
                (Some(Need::Object(p)), Some(t), Some(k)) if t.acls_on => Need::ObjectAcl(p, self.object_acl(t, k, version_id)),
                (Some(n), _, _) => n,
                (None, _, _) => Need::OwnerOnly,
            };
            if !permits(cred, &req, target.as_ref(), need) {
                return Err(denied());
            }
        } else if let (Some(t), Some(k), Some(Need::Object(p))) = (target.as_ref(), key, acl_need(op)) {
            // The bucket owner's root reading an object another account wrote (ObjectWriter):
            // only what the object's ACL grants it.
            let obj = self.object_acl(t, k, version_id);
            let foreign = obj.exists && obj.owner.is_some() && obj.owner != caller;
            if foreign && !obj.allows(caller.as_deref(), p) {
                return Err(denied());
            }
        }
        // A copy also reads its source, which the caller must be allowed to read too.
        if is_copy {
            let header = cx.headers().get("x-amz-copy-source").and_then(|v| v.to_str().ok());
            let Some(s3s::dto::CopySource::Bucket { bucket, key, version_id }) = header.and_then(|h| s3s::dto::CopySource::parse(h).ok())
            else {
                return Err(denied());
            };
            let src = self.with_policy(self.target(&bucket));
            if let Some(want) = cx.headers().get("x-amz-source-expected-bucket-owner")
                && src.owner.as_deref().is_some_and(|o| o.as_bytes() != want.as_bytes())
            {
                return Err(denied());
            }
            let read = Request {
                action: actions::action("GetObject", version_id.is_some()),
                resource: actions::resource(Some(&bucket), Some(&key)),
                ..req
            };
            let obj = if src.acls_on {
                self.object_acl(&src, &key, version_id.as_deref())
            } else {
                ObjectAcl::default()
            };
            let source_root = cred.is_some_and(|c| c.principal.root && c.session.is_none() && src.owned_by(&c.principal.account));
            let foreign = obj.exists && obj.owner.is_some() && obj.owner != caller;
            let ok = if source_root {
                !foreign || obj.allows(caller.as_deref(), Permission::Read)
            } else {
                permits(cred, &read, Some(&src), Need::ObjectAcl(Permission::Read, obj))
            };
            if !ok {
                return Err(denied());
            }
        }
        Ok(())
    }
}

/// The account of a signed request, put in its extensions for the handlers (owner of a
/// new bucket or object, the ACL owner, ListBuckets' filter).
#[derive(Clone, Debug)]
pub struct Caller {
    pub account: String,
}

/// What an operation needs from an ACL: a permission on the bucket or on the object
/// (with the object's ACL, read when ACLs are on), or nothing an ACL can grant.
enum Need {
    Bucket(Permission),
    Object(Permission),
    ObjectAcl(Permission, ObjectAcl),
    OwnerOnly,
}

/// The ACL permission each operation needs, as AWS maps them: READ on a bucket lists it,
/// WRITE writes and deletes its objects, READ_ACP/WRITE_ACP read and write ACLs; READ on
/// an object reads it. Everything else is for the owner (or a policy) to grant.
fn acl_need(op: &str) -> Option<Need> {
    use Permission::*;
    Some(match op {
        "ListObjects" | "ListObjectsV2" | "ListObjectVersions" | "ListMultipartUploads" | "HeadBucket" => Need::Bucket(Read),
        "PutObject"
        | "PostObject"
        | "DeleteObject"
        | "DeleteObjects"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "ListParts"
        | "CopyObject" => Need::Bucket(Write),
        "GetBucketAcl" => Need::Bucket(ReadAcp),
        "PutBucketAcl" => Need::Bucket(WriteAcp),
        "GetObject" | "HeadObject" | "GetObjectAttributes" | "SelectObjectContent" => Need::Object(Read),
        "GetObjectAcl" => Need::Object(ReadAcp),
        "PutObjectAcl" => Need::Object(WriteAcp),
        _ => return None,
    })
}

/// A bucket as the authoriser sees it: owner, policy, and (when ACLs are on) its ACL.
#[derive(Clone)]
struct Target {
    name: String,
    /// `None`: the bucket does not exist (the handler answers NoSuchBucket to its owner's
    /// account, which is then the caller's).
    owner: Option<String>,
    policy: Option<Arc<Policy>>,
    acls_on: bool,
    acl: Option<Arc<Acl>>,
}

impl Target {
    fn owned_by(&self, account: &str) -> bool {
        self.owner.as_deref().is_none_or(|o| o == account)
    }
}

/// An object's owner and ACL, for object-level permissions on a bucket with ACLs on.
#[derive(Clone, Default)]
struct ObjectAcl {
    /// `None`: the bucket owner (or no such object).
    owner: Option<String>,
    acl: Option<Acl>,
    /// The object exists (a missing one is judged by the bucket: the handler answers
    /// NoSuchKey to whoever may list the bucket, AccessDenied to the rest).
    exists: bool,
}

impl ObjectAcl {
    /// Whether `caller` (an account, or anonymous) has `p` on the object: as its owner,
    /// or by a grant.
    fn allows(&self, caller: Option<&str>, p: Permission) -> bool {
        if caller.is_some() && self.owner.as_deref() == caller {
            return true;
        }
        let who = caller.map_or(Who::Anonymous, Who::Account);
        self.acl.as_ref().is_some_and(|a| a.allows(who, p))
    }
}

/// The authorisation decision for a caller who is not the owning account's root.
///
/// - Same account (or no such bucket): the identity policies or the bucket policy allow,
///   an explicit Deny anywhere winning (and the object's ACL, for an object another
///   account owns).
/// - Another account, or anonymous: the bucket policy or an ACL must grant it (the
///   resource side) and, for an IAM user, its identity policies must allow it too; an
///   explicit Deny anywhere wins.
fn permits(cred: Option<&Credential>, req: &Request, target: Option<&Target>, need: Need) -> bool {
    let policy = target.and_then(|t| t.policy.as_deref());
    let caller = cred.map(|c| c.principal.account.as_str());
    let same = match (cred, target) {
        (Some(c), Some(t)) => t.owned_by(&c.principal.account),
        (Some(_), None) => true,
        (None, _) => false,
    };
    if same {
        let c = cred.expect("same account means signed");
        if !allows(c, req, policy) {
            return false;
        }
        // The bucket owner's users read another account's objects only by their ACL.
        return match need {
            Need::ObjectAcl(p, o) if o.exists && o.owner.as_deref().is_some_and(|w| Some(w) != caller) => o.allows(caller, p),
            _ => true,
        };
    }
    let Some(t) = target else { return false };
    if t.owner.is_none() {
        // No such bucket: the handler answers NoSuchBucket.
        return true;
    }
    // An explicit Deny in the bucket policy wins over every grant.
    if policy.is_some_and(|p| p.evaluate(req) == Decision::Deny) {
        return false;
    }
    let by_policy = policy.is_some_and(|p| p.evaluate(req) == Decision::Allow);
    let who = caller.map_or(Who::Anonymous, Who::Account);
    let by_acl = t.acls_on
        && match &need {
            Need::Bucket(p) => t.acl.as_ref().is_some_and(|a| a.allows(who, *p)),
            Need::ObjectAcl(p, o) if o.exists => o.allows(caller, *p),
            // A missing object: whoever may list the bucket learns it is missing.
            Need::ObjectAcl(_, _) => t.acl.as_ref().is_some_and(|a| a.allows(who, Permission::Read)),
            Need::Object(_) | Need::OwnerOnly => false,
        };
    if !(by_policy || by_acl) {
        return false;
    }
    match cred {
        None => true,
        // Its own account's policies still bound what a user (or session) may do.
        Some(c) => identity_allows(c, req),
    }
}

/// The caller's own account allows `req`: an account root always (a session only as its
/// policy allows), a user when its identity policies allow and none denies.
fn identity_allows(c: &Credential, req: &Request) -> bool {
    allows(c, req, None)
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
    fn v2_dates_are_read_in_every_form_clients_send() {
        for d in [
            "Tue, 01 Dec 2026 16:05:24 GMT",
            "Tue, 01 Dec 2026 16:05:24 +0000",
            "20261201T160524Z",
        ] {
            assert_eq!(parse_v2_date(d).map(|t| t.unix_timestamp()), Some(1_796_141_124), "{d}");
        }
        assert!(parse_v2_date("Bad Date").is_none());
        let req = |date: &str| {
            http::Request::builder()
                .header("authorization", "AWS k:sig")
                .header("date", date)
                .body(())
                .unwrap()
        };
        let code = |r: http::Request<()>| v2_date_error(&r).map(|e| e.code().as_str().to_owned());
        assert_eq!(code(req("Bad Date")).as_deref(), Some("AccessDenied"));
        assert_eq!(code(req("Tue, 07 Jul 1950 21:53:04 GMT")).as_deref(), Some("AccessDenied"));
        assert_eq!(code(req("Tue, 07 Jul 2010 21:53:04 GMT")).as_deref(), Some("RequestTimeTooSkewed"));
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap();
        assert_eq!(code(req(&now)), None);
        let v4 = http::Request::builder()
            .header("authorization", "AWS4-HMAC-SHA256 x")
            .body(())
            .unwrap();
        assert_eq!(code(v4), None);
    }

    #[test]
    fn query_values_decode() {
        assert_eq!(query_decode("a%2Fb+c%zz%"), "a/b c%zz%");
        assert_eq!(query_decode("%C3%BC"), "ü");
    }
}
