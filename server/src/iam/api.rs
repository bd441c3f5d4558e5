//! The IAM and STS query APIs, served on the S3 port. A request is IAM's or STS's when its
//! SigV4 credential scope names that service (`.../us-east-1/iam/aws4_request`), as
//! boto3, the AWS CLI and the SDKs sign them; everything else goes to S3.
//!
//! Requests are form-encoded POSTs (`Action=CreateUser&UserName=...`); answers are AWS's
//! XML, errors `<ErrorResponse>` with AWS's codes. Only the root user and principals whose
//! policies allow the `iam:` action manage identities. STS AssumeRole on a role of this
//! account needs the role's trust policy to allow the caller, and, when it trusts the
//! whole account rather than naming the caller, the caller's own policies to allow
//! `sts:AssumeRole` (root's always do), as on AWS; the session carries the role's
//! policies, narrowed by an optional session policy. A RoleArn that names no role of
//! this account keeps the compatibility form (MinIO's): a session of the caller itself.
//! Accounts (CreateAccount, ListAccounts, DeleteAccount: a Quarry extension) are managed
//! by the default account's root.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use quarry_storage::Store;

use super::identity::{self, Credential, Directory, IamError, State};
use super::policy::{Decision, Request};
use super::sigv4;

const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// Largest request body accepted (policies are at most a few KiB).
const MAX_BODY: usize = 256 * 1024;
/// The configuration document the identity store lives in.
const DOC: &str = "iam";

/// Why the identity store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("reading the identity store: {0}")]
    Storage(#[from] quarry_storage::Error),
    #[error("the identity store does not parse ({0}); refusing to start with no users rather than lose them")]
    Corrupt(serde_json::Error),
}

/// The IAM/STS service: the identity store and its compiled directory.
pub struct Iam {
    store: Store,
    state: tokio::sync::Mutex<State>,
    dir: arc_swap::ArcSwap<Directory>,
    root_key: String,
    root_secret: String,
    /// Shortest AssumeRole duration accepted, in seconds (AWS: 900).
    min_session: i64,
}

/// An API error: an IAM error, or one of the signature/authorisation failures.
#[derive(Debug)]
struct ApiError {
    status: u16,
    code: &'static str,
    message: String,
}

impl From<IamError> for ApiError {
    fn from(e: IamError) -> Self {
        ApiError {
            status: e.status(),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

fn api_err(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// XML text escaping.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn el(out: &mut String, name: &str, text: &str) {
    out.push_str(&format!("<{name}>{}</{name}>", esc(text)));
}

/// Unix seconds as ISO 8601 (`2026-11-26T05:00:00Z`).
pub fn iso8601(t: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The request's parameters (form body and query string).
struct Params(HashMap<String, String>);

impl Params {
    fn parse(query: &str, body: &[u8]) -> ApiResult<Params> {
        let mut out = HashMap::new();
        let body = std::str::from_utf8(body).map_err(|_| api_err(400, "MalformedInput", "the request body is not UTF-8"))?;
        for pair in query.split('&').chain(body.split('&')).filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                crate::s3::convert::form_decode(s, false)
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| api_err(400, "MalformedInput", "a parameter is not valid form encoding"))
            };
            out.insert(dec(k)?, dec(v)?);
        }
        Ok(Params(out))
    }

    fn opt(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn req(&self, name: &str) -> ApiResult<&str> {
        self.opt(name).ok_or_else(|| {
            let mut camel = name.to_owned();
            if let Some(first) = camel.get_mut(..1) {
                first.make_ascii_lowercase();
            }
            api_err(
                400,
                "ValidationError",
                format!("1 validation error detected: Value null at '{camel}' failed to satisfy constraint: Member must not be null"),
            )
        })
    }

    fn path(&self) -> &str {
        self.opt("Path").unwrap_or("/")
    }

    /// (MaxItems, Marker) for list calls.
    fn page(&self) -> ApiResult<(usize, Option<&str>)> {
        let max = match self.opt("MaxItems") {
            None => 100,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => return Err(api_err(400, "ValidationError", "MaxItems must be between 1 and 1000")),
            },
        };
        Ok((max, self.opt("Marker")))
    }
}

/// Items of a sorted list after `marker`, at most `max`; with whether more follow.
fn paginate<'a, T>(items: impl Iterator<Item = (&'a String, T)>, page: (usize, Option<&str>)) -> (Vec<(&'a String, T)>, bool) {
    let (max, marker) = page;
    let mut out: Vec<(&String, T)> = items.filter(|(k, _)| marker.is_none_or(|m| k.as_str() > m)).take(max + 1).collect();
    let truncated = out.len() > max;
    out.truncate(max);
    (out, truncated)
}

fn list_tail(out: &mut String, names: &[&String], truncated: bool) {
    el(out, "IsTruncated", if truncated { "true" } else { "false" });
    if truncated && let Some(last) = names.last() {
        el(out, "Marker", last);
    }
}

fn user_xml(out: &mut String, name: &str, u: &identity::User) {
    el(out, "Path", &u.path);
    el(out, "UserName", name);
    el(out, "UserId", &u.id);
    el(out, "Arn", &identity::user_arn(&u.path, name));
    el(out, "CreateDate", &iso8601(u.created));
}

fn group_xml(out: &mut String, name: &str, g: &identity::Group) {
    el(out, "Path", &g.path);
    el(out, "GroupName", name);
    el(out, "GroupId", &g.id);
    el(out, "Arn", &identity::group_arn(&g.path, name));
    el(out, "CreateDate", &iso8601(g.created));
}

/// A role; `full` adds what GetRole reports beyond CreateRole and ListRoles.
fn role_xml(out: &mut String, name: &str, r: &identity::Role, full: bool) {
    el(out, "Path", &r.path);
    el(out, "RoleName", name);
    el(out, "RoleId", &r.id);
    el(out, "Arn", &identity::role_arn(&r.path, name));
    el(out, "CreateDate", &iso8601(r.created));
    el(out, "AssumeRolePolicyDocument", &sigv4::uri_encode(&r.trust, false));
    if full {
        el(out, "Description", &r.description);
        el(out, "MaxSessionDuration", &r.max_session.to_string());
    }
}

fn policy_xml(out: &mut String, state: &State, name: &str, p: &identity::ManagedPolicy) {
    el(out, "PolicyName", name);
    el(out, "PolicyId", &p.id);
    el(out, "Arn", &identity::policy_arn(&p.path, name));
    el(out, "Path", &p.path);
    el(out, "DefaultVersionId", "v1");
    el(out, "AttachmentCount", &state.attachment_count(name).to_string());
    el(out, "PermissionsBoundaryUsageCount", "0");
    el(out, "IsAttachable", "true");
    if !p.description.is_empty() {
        el(out, "Description", &p.description);
    }
    el(out, "CreateDate", &iso8601(p.created));
    el(out, "UpdateDate", &iso8601(p.created));
}

/// Policy documents are returned URL-encoded, as AWS does (the SDKs decode them).
fn policy_doc(out: &mut String, doc: &str) {
    el(out, "PolicyDocument", &sigv4::uri_encode(doc, false));
}

fn attached_xml(out: &mut String, state: &State, names: &std::collections::BTreeSet<String>) {
    out.push_str("<AttachedPolicies>");
    for n in names {
        if let Some(p) = state.policies.get(n) {
            out.push_str("<member>");
            el(out, "PolicyName", n);
            el(out, "PolicyArn", &identity::policy_arn(&p.path, n));
            out.push_str("</member>");
        }
    }
    out.push_str("</AttachedPolicies>");
    el(out, "IsTruncated", "false");
}

fn names_xml(out: &mut String, tag: &str, names: impl Iterator<Item = impl AsRef<str>>) {
    out.push_str(&format!("<{tag}>"));
    for n in names {
        el(out, "member", n.as_ref());
    }
    out.push_str(&format!("</{tag}>"));
    el(out, "IsTruncated", "false");
}

fn request_id() -> String {
    identity::random_id("", 20).to_ascii_lowercase()
}

fn xml_response(status: u16, body: String) -> http::Response<s3s::Body> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/xml")
        .header("x-amzn-requestid", request_id())
        .body(s3s::Body::from(body))
        .expect("valid response")
}

fn error_response(ns: &str, e: &ApiError) -> http::Response<s3s::Body> {
    let kind = if e.status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{ns}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        e.code,
        esc(&e.message),
        request_id()
    );
    xml_response(e.status, body)
}

fn ok_response(ns: &str, action: &str, result: &str) -> http::Response<s3s::Body> {
    // Actions whose answer has a (possibly empty) result element, as boto3 expects.
    let result = if result.is_empty() && action != "UpdateRole" {
        String::new()
    } else {
        format!("<{action}Result>{result}</{action}Result>")
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{ns}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        request_id()
    );
    xml_response(200, body)
}

/// Whether `cred` may do `req`, by its identity policies (root: everything), narrowed by
/// its session policy, with `resource` (a bucket policy) granting too. An explicit Deny
/// anywhere wins.
pub fn allows(cred: &Credential, req: &Request, resource: Option<&super::policy::Policy>) -> bool {
    let mut allow = cred.principal.root;
    if !cred.principal.root {
        for p in cred.principal.policies.iter().map(AsRef::as_ref).chain(resource) {
            match p.evaluate(req) {
                Decision::Deny => return false,
                Decision::Allow => allow = true,
                Decision::NotApplicable => {}
            }
        }
    }
    if let Some(s) = &cred.session
        && let Some(p) = &s.policy
        && p.evaluate(req) != Decision::Allow
    {
        return false;
    }
    allow
}

/// The value of identity condition key `key` (`aws:username`, `aws:userid`,
/// `aws:principaltype`; lower-case) for a caller, if it has one.
pub fn identity_key(cred: &Credential, key: &str) -> Option<String> {
    let p = &cred.principal;
    match (key, &cred.session) {
        ("aws:principaltype", Some(_)) => Some("AssumedRole".into()),
        ("aws:principaltype", None) => Some(if p.root { "Account" } else { "User" }.into()),
        ("aws:userid", Some(s)) => Some(format!("{}:{}", p.id, s.arn.rsplit('/').next().unwrap_or(""))),
        ("aws:userid", None) => Some(if p.root { p.account.clone() } else { p.id.clone() }),
        ("aws:username", _) if !p.root => Some(p.name.clone()),
        _ => None,
    }
}

/// The caller's ARN: the session's for temporary credentials, else the user's (or root's).
pub fn principal_arn(cred: &Credential) -> &str {
    cred.session.as_ref().map_or(cred.principal.arn.as_str(), |s| s.arn.as_str())
}

/// The principal ARN and the identity condition keys of a caller.
pub fn identity_context(cred: &Credential, context: &mut HashMap<String, Vec<String>>) -> String {
    for key in ["aws:principaltype", "aws:userid", "aws:username"] {
        if let Some(v) = identity_key(cred, key) {
            context.insert(key.into(), vec![v]);
        }
    }
    principal_arn(cred).to_owned()
}

/// Whether a request is for the IAM or STS API (its SigV4 scope names the service).
pub fn is_iam_request<B>(req: &http::Request<B>) -> bool {
    matches!(sigv4::signed_service(req.headers()), Some("iam" | "sts"))
}

impl Iam {
    /// Load the identity store from `store` (empty when none was written yet).
    pub async fn open(store: Store, root_key: String, root_secret: String, min_session: i64) -> Result<Arc<Iam>, OpenError> {
        let state = match store.config_doc(DOC).await? {
            Some(text) => serde_json::from_str::<State>(&text).map_err(OpenError::Corrupt)?,
            None => State::default(),
        };
        let dir = Directory::build(&state, &root_key, &root_secret);
        tracing::info!(
            users = state.users.len(),
            groups = state.groups.len(),
            keys = state.keys.len(),
            "identity store loaded"
        );
        Ok(Arc::new(Iam {
            store,
            state: tokio::sync::Mutex::new(state),
            dir: arc_swap::ArcSwap::from_pointee(dir),
            root_key,
            root_secret,
            min_session,
        }))
    }

    /// The current compiled directory (cheap: an atomic load).
    pub fn directory(&self) -> Arc<Directory> {
        self.dir.load_full()
    }

    /// Apply `f` to a copy of the state, store it durably, then make it current. Nothing
    /// changes when `f` fails or the write does not reach a quorum.
    async fn mutate<T>(&self, f: impl FnOnce(&mut State) -> Result<T, IamError>) -> ApiResult<T> {
        let mut guard = self.state.lock().await;
        let mut next = guard.clone();
        next.purge_expired();
        let out = f(&mut next)?;
        let text = serde_json::to_string(&next).expect("the identity store serialises");
        if let Err(e) = self.store.set_config_doc(DOC, text).await {
            tracing::error!(error = %e, "writing the identity store failed");
            return Err(api_err(500, "ServiceFailure", "the identity store could not be written"));
        }
        self.dir.store(Arc::new(Directory::build(&next, &self.root_key, &self.root_secret)));
        *guard = next;
        Ok(out)
    }

    /// Serve one IAM or STS request.
    pub async fn handle(self: Arc<Self>, req: http::Request<hyper::body::Incoming>) -> http::Response<s3s::Body> {
        let sts = sigv4::signed_service(req.headers()) == Some("sts");
        let ns = if sts { STS_NS } else { IAM_NS };
        let (parts, body) = req.into_parts();
        let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return error_response(ns, &api_err(400, "InvalidInput", "the request body is too large or was cut off")),
        };
        match self.serve(&parts, &body, sts).await {
            Ok(resp) => resp,
            Err(e) => error_response(ns, &e),
        }
    }

    async fn serve(&self, parts: &http::request::Parts, body: &Bytes, sts: bool) -> ApiResult<http::Response<s3s::Body>> {
        let auth = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(sigv4::Authorization::parse)
            .ok_or_else(|| api_err(400, "IncompleteSignature", "the Authorization header is not a valid SigV4 header"))?;
        let dir = self.directory();
        let invalid = || {
            api_err(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        };
        let cred = dir.keys.get(&auth.access_key).filter(|c| c.active).ok_or_else(invalid)?;
        let now = identity::now();
        if let Some(s) = &cred.session {
            if s.expires <= now {
                return Err(api_err(
                    400,
                    "ExpiredToken",
                    "The security token included in the request is expired",
                ));
            }
            let token = parts.headers.get("x-amz-security-token").and_then(|v| v.to_str().ok());
            if token.is_none_or(|t| !sigv4::same_signature(t, &s.token)) {
                return Err(invalid());
            }
        }
        match sigv4::verify(parts, body, &auth, &cred.secret, now) {
            Ok(()) => {}
            Err(sigv4::VerifyError::Incomplete(why)) => return Err(api_err(400, "IncompleteSignature", why)),
            Err(sigv4::VerifyError::Skewed) => {
                return Err(api_err(
                    403,
                    "SignatureDoesNotMatch",
                    "Signature expired: the request time is more than 15 minutes from the server's",
                ));
            }
            Err(sigv4::VerifyError::Mismatch) => {
                return Err(api_err(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
                ));
            }
        }
        let params = Params::parse(parts.uri.query().unwrap_or(""), body)?;
        let action = params.req("Action")?.to_owned();
        let ns = if sts { STS_NS } else { IAM_NS };
        let result = if sts {
            self.sts_action(&action, &params, cred).await?
        } else {
            self.iam_action(&action, &params, cred).await?
        };
        Ok(ok_response(ns, &action, &result))
    }

    /// Refuse unless `cred` may do `iam:action` on `resource`.
    fn authorize(&self, cred: &Credential, action: &str, resource: &str) -> ApiResult<()> {
        let mut context = HashMap::new();
        let principal = identity_context(cred, &mut context);
        let req = Request {
            action: format!("iam:{action}"),
            resource: resource.to_owned(),
            principal: principal.clone(),
            context,
        };
        if allows(cred, &req, None) {
            Ok(())
        } else {
            Err(api_err(
                403,
                "AccessDenied",
                format!("User: {principal} is not authorized to perform: iam:{action} on resource: {resource}"),
            ))
        }
    }

    /// The user an action names, or the caller when it names none (AWS's default for the
    /// key and GetUser calls).
    fn target_user<'p>(params: &'p Params, cred: &'p Credential) -> ApiResult<&'p str> {
        match params.opt("UserName") {
            Some(u) => Ok(u),
            None if !cred.principal.root => Ok(&cred.principal.name),
            None => Err(api_err(
                400,
                "ValidationError",
                "Must specify userName when calling with non-User credentials",
            )),
        }
    }

    #[allow(clippy::too_many_lines)]
    async fn iam_action(&self, action: &str, p: &Params, cred: &Credential) -> ApiResult<String> {
        let mut out = String::new();
        // The resource each action is authorised on.
        let user_res = |state: &State, name: &str| {
            let path = state.users.get(name).map_or("/", |u| u.path.as_str());
            identity::user_arn(path, name)
        };
        let group_res = |state: &State, name: &str| {
            let path = state.groups.get(name).map_or("/", |g| g.path.as_str());
            identity::group_arn(path, name)
        };
        let role_res = |state: &State, name: &str| {
            let path = state.roles.get(name).map_or("/", |r| r.path.as_str());
            identity::role_arn(path, name)
        };
        let all = |kind: &str| format!("arn:aws:iam::{}:{kind}/*", identity::ACCOUNT_ID);
        // Parameters Quarry does not keep are refused, never dropped silently.
        if let Some(p) = p.0.keys().find(|k| k.starts_with("Tags.") || *k == "PermissionsBoundary") {
            return Err(api_err(
                501,
                "NotImplemented",
                format!("{p}: tags and permissions boundaries on IAM entities are not supported by Quarry"),
            ));
        }
        // Accounts (a Quarry extension: AWS creates accounts through Organizations) are
        // managed by the default account's root; other accounts have no IAM entities.
        let default_root = cred.principal.root && cred.session.is_none() && cred.principal.account == identity::ACCOUNT_ID;
        if matches!(action, "CreateAccount" | "ListAccounts" | "DeleteAccount") {
            if !default_root {
                return Err(api_err(403, "AccessDenied", "Only the default account's root manages accounts"));
            }
            return self.account_action(action, p).await;
        }
        if cred.principal.account != identity::ACCOUNT_ID {
            return Err(api_err(
                501,
                "NotImplemented",
                "IAM users, groups and policies exist only in the default account; this account has its root key alone",
            ));
        }
        match action {
            "CreateUser" => {
                let name = p.req("UserName")?;
                self.authorize(cred, action, &identity::user_arn(p.path(), name))?;
                let path = p.path().to_owned();
                self.mutate(|s| {
                    let u = s.create_user(name, &path)?;
                    out.push_str("<User>");
                    user_xml(&mut out, name, u);
                    out.push_str("</User>");
                    Ok(())
                })
                .await?;
            }
            "GetUser" => {
                let state = self.state.lock().await;
                if p.opt("UserName").is_none() && cred.principal.root {
                    self.authorize(cred, action, identity::ROOT_ARN)?;
                    out.push_str("<User>");
                    el(&mut out, "UserId", identity::ACCOUNT_ID);
                    el(&mut out, "Arn", identity::ROOT_ARN);
                    el(&mut out, "CreateDate", &iso8601(0));
                    out.push_str("</User>");
                } else {
                    let name = Self::target_user(p, cred)?;
                    self.authorize(cred, action, &user_res(&state, name))?;
                    out.push_str("<User>");
                    user_xml(&mut out, name, state.user(name)?);
                    out.push_str("</User>");
                }
            }
            "ListUsers" => {
                self.authorize(cred, action, &all("user"))?;
                let state = self.state.lock().await;
                let prefix = p.opt("PathPrefix").unwrap_or("/");
                let (page, truncated) = paginate(state.users.iter().filter(|(_, u)| u.path.starts_with(prefix)), p.page()?);
                out.push_str("<Users>");
                for (name, u) in &page {
                    out.push_str("<member>");
                    user_xml(&mut out, name, u);
                    out.push_str("</member>");
                }
                out.push_str("</Users>");
                list_tail(&mut out, &page.iter().map(|(n, _)| *n).collect::<Vec<_>>(), truncated);
            }
            "DeleteUser" => {
                let name = p.req("UserName")?;
                self.authorize(cred, action, &user_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.delete_user(name)).await?;
            }
            "CreateAccessKey" => {
                let name = Self::target_user(p, cred)?;
                self.authorize(cred, action, &user_res(&*self.state.lock().await, name))?;
                let (id, key) = self.mutate(|s| s.create_access_key(name)).await?;
                out.push_str("<AccessKey>");
                el(&mut out, "UserName", name);
                el(&mut out, "AccessKeyId", &id);
                el(&mut out, "Status", "Active");
                el(&mut out, "SecretAccessKey", &key.secret);
                el(&mut out, "CreateDate", &iso8601(key.created));
                out.push_str("</AccessKey>");
            }
            "ListAccessKeys" => {
                let name = Self::target_user(p, cred)?;
                let state = self.state.lock().await;
                self.authorize(cred, action, &user_res(&state, name))?;
                state.user(name)?;
                out.push_str("<AccessKeyMetadata>");
                for (id, k) in state.keys.iter().filter(|(_, k)| k.user == name) {
                    out.push_str("<member>");
                    el(&mut out, "UserName", name);
                    el(&mut out, "AccessKeyId", id);
                    el(&mut out, "Status", if k.active { "Active" } else { "Inactive" });
                    el(&mut out, "CreateDate", &iso8601(k.created));
                    out.push_str("</member>");
                }
                out.push_str("</AccessKeyMetadata>");
                el(&mut out, "IsTruncated", "false");
            }
            "UpdateAccessKey" => {
                let name = Self::target_user(p, cred)?;
                let (id, status) = (p.req("AccessKeyId")?, p.req("Status")?);
                self.authorize(cred, action, &user_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.update_access_key(name, id, status)).await?;
            }
            "DeleteAccessKey" => {
                let name = Self::target_user(p, cred)?;
                let id = p.req("AccessKeyId")?;
                self.authorize(cred, action, &user_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.delete_access_key(name, id)).await?;
            }
            "PutUserPolicy" => {
                let (name, pname, doc) = (p.req("UserName")?, p.req("PolicyName")?, p.req("PolicyDocument")?);
                self.authorize(cred, action, &user_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.put_user_policy(name, pname, doc)).await?;
            }
            "GetUserPolicy" => {
                let (name, pname) = (p.req("UserName")?, p.req("PolicyName")?);
                let state = self.state.lock().await;
                self.authorize(cred, action, &user_res(&state, name))?;
                let doc = state
                    .user(name)?
                    .inline
                    .get(pname)
                    .ok_or_else(|| IamError::NoSuchEntity(format!("The user policy with name {pname} cannot be found.")))?;
                el(&mut out, "UserName", name);
                el(&mut out, "PolicyName", pname);
                policy_doc(&mut out, doc);
            }
            "ListUserPolicies" => {
                let name = p.req("UserName")?;
                let state = self.state.lock().await;
                self.authorize(cred, action, &user_res(&state, name))?;
                names_xml(&mut out, "PolicyNames", state.user(name)?.inline.keys());
            }
            "DeleteUserPolicy" => {
                let (name, pname) = (p.req("UserName")?, p.req("PolicyName")?);
                self.authorize(cred, action, &user_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.delete_user_policy(name, pname)).await?;
            }
            "ListGroupsForUser" => {
                let name = p.req("UserName")?;
                let state = self.state.lock().await;
                self.authorize(cred, action, &user_res(&state, name))?;
                out.push_str("<Groups>");
                for g in &state.user(name)?.groups {
                    if let Some(group) = state.groups.get(g) {
                        out.push_str("<member>");
                        group_xml(&mut out, g, group);
                        out.push_str("</member>");
                    }
                }
                out.push_str("</Groups>");
                el(&mut out, "IsTruncated", "false");
            }
            "AttachUserPolicy" | "DetachUserPolicy" => {
                let (name, arn) = (p.req("UserName")?, p.req("PolicyArn")?);
                self.authorize(cred, action, &user_res(&*self.state.lock().await, name))?;
                let attach = action == "AttachUserPolicy";
                self.mutate(|s| {
                    if attach {
                        s.attach_user_policy(name, arn)
                    } else {
                        s.detach_user_policy(name, arn)
                    }
                })
                .await?;
            }
            "ListAttachedUserPolicies" => {
                let name = p.req("UserName")?;
                let state = self.state.lock().await;
                self.authorize(cred, action, &user_res(&state, name))?;
                attached_xml(&mut out, &state, &state.user(name)?.attached);
            }
            "CreateRole" => {
                let name = p.req("RoleName")?;
                let trust = p.req("AssumeRolePolicyDocument")?;
                self.authorize(cred, action, &identity::role_arn(p.path(), name))?;
                let path = p.path().to_owned();
                let max = p.opt("MaxSessionDuration").map(|v| v.parse::<i64>().unwrap_or(-1));
                let description = p.opt("Description").unwrap_or("");
                self.mutate(|s| {
                    let r = s.create_role(name, &path, trust, description, max)?;
                    out.push_str("<Role>");
                    role_xml(&mut out, name, r, false);
                    out.push_str("</Role>");
                    Ok(())
                })
                .await?;
            }
            "GetRole" => {
                let name = p.req("RoleName")?;
                let state = self.state.lock().await;
                self.authorize(cred, action, &role_res(&state, name))?;
                out.push_str("<Role>");
                role_xml(&mut out, name, state.role(name)?, true);
                out.push_str("</Role>");
            }
            "ListRoles" => {
                self.authorize(cred, action, &all("role"))?;
                let state = self.state.lock().await;
                let prefix = p.opt("PathPrefix").unwrap_or("/");
                let (page, truncated) = paginate(state.roles.iter().filter(|(_, r)| r.path.starts_with(prefix)), p.page()?);
                out.push_str("<Roles>");
                for (name, r) in &page {
                    out.push_str("<member>");
                    role_xml(&mut out, name, r, false);
                    out.push_str("</member>");
                }
                out.push_str("</Roles>");
                list_tail(&mut out, &page.iter().map(|(n, _)| *n).collect::<Vec<_>>(), truncated);
            }
            "UpdateRole" | "UpdateRoleDescription" => {
                let name = p.req("RoleName")?;
                self.authorize(cred, action, &role_res(&*self.state.lock().await, name))?;
                let max = p.opt("MaxSessionDuration").map(|v| v.parse::<i64>().unwrap_or(-1));
                let description = p.opt("Description");
                self.mutate(|s| s.update_role(name, description, max)).await?;
                if action == "UpdateRoleDescription" {
                    let state = self.state.lock().await;
                    out.push_str("<Role>");
                    role_xml(&mut out, name, state.role(name)?, true);
                    out.push_str("</Role>");
                }
            }
            "UpdateAssumeRolePolicy" => {
                let (name, doc) = (p.req("RoleName")?, p.req("PolicyDocument")?);
                self.authorize(cred, action, &role_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.update_trust_policy(name, doc)).await?;
            }
            "DeleteRole" => {
                let name = p.req("RoleName")?;
                self.authorize(cred, action, &role_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.delete_role(name)).await?;
            }
            "PutRolePolicy" => {
                let (name, pname, doc) = (p.req("RoleName")?, p.req("PolicyName")?, p.req("PolicyDocument")?);
                self.authorize(cred, action, &role_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.put_role_policy(name, pname, doc)).await?;
            }
            "GetRolePolicy" => {
                let (name, pname) = (p.req("RoleName")?, p.req("PolicyName")?);
                let state = self.state.lock().await;
                self.authorize(cred, action, &role_res(&state, name))?;
                let doc = state
                    .role(name)?
                    .inline
                    .get(pname)
                    .ok_or_else(|| IamError::NoSuchEntity(format!("The role policy with name {pname} cannot be found.")))?;
                el(&mut out, "RoleName", name);
                el(&mut out, "PolicyName", pname);
                policy_doc(&mut out, doc);
            }
            "ListRolePolicies" => {
                let name = p.req("RoleName")?;
                let state = self.state.lock().await;
                self.authorize(cred, action, &role_res(&state, name))?;
                names_xml(&mut out, "PolicyNames", state.role(name)?.inline.keys());
            }
            "DeleteRolePolicy" => {
                let (name, pname) = (p.req("RoleName")?, p.req("PolicyName")?);
                self.authorize(cred, action, &role_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.delete_role_policy(name, pname)).await?;
            }
            "AttachRolePolicy" | "DetachRolePolicy" => {
                let (name, arn) = (p.req("RoleName")?, p.req("PolicyArn")?);
                self.authorize(cred, action, &role_res(&*self.state.lock().await, name))?;
                let attach = action == "AttachRolePolicy";
                self.mutate(|s| {
                    if attach {
                        s.attach_role_policy(name, arn)
                    } else {
                        s.detach_role_policy(name, arn)
                    }
                })
                .await?;
            }
            "ListAttachedRolePolicies" => {
                let name = p.req("RoleName")?;
                let state = self.state.lock().await;
                self.authorize(cred, action, &role_res(&state, name))?;
                attached_xml(&mut out, &state, &state.role(name)?.attached);
            }
            "ListOpenIDConnectProviders" => {
                // No provider can be created (AssumeRoleWithWebIdentity is not served), so
                // the list is empty.
                self.authorize(cred, action, &all("oidc-provider"))?;
                out.push_str("<OpenIDConnectProviderList/>");
            }
            "CreateGroup" => {
                let name = p.req("GroupName")?;
                self.authorize(cred, action, &identity::group_arn(p.path(), name))?;
                let path = p.path().to_owned();
                self.mutate(|s| {
                    let g = s.create_group(name, &path)?;
                    out.push_str("<Group>");
                    group_xml(&mut out, name, g);
                    out.push_str("</Group>");
                    Ok(())
                })
                .await?;
            }
            "GetGroup" => {
                let name = p.req("GroupName")?;
                let state = self.state.lock().await;
                self.authorize(cred, action, &group_res(&state, name))?;
                out.push_str("<Group>");
                group_xml(&mut out, name, state.group(name)?);
                out.push_str("</Group><Users>");
                for (u, user) in state.users.iter().filter(|(_, u)| u.groups.contains(name)) {
                    out.push_str("<member>");
                    user_xml(&mut out, u, user);
                    out.push_str("</member>");
                }
                out.push_str("</Users>");
                el(&mut out, "IsTruncated", "false");
            }
            "ListGroups" => {
                self.authorize(cred, action, &all("group"))?;
                let state = self.state.lock().await;
                let prefix = p.opt("PathPrefix").unwrap_or("/");
                let (page, truncated) = paginate(state.groups.iter().filter(|(_, g)| g.path.starts_with(prefix)), p.page()?);
                out.push_str("<Groups>");
                for (name, g) in &page {
                    out.push_str("<member>");
                    group_xml(&mut out, name, g);
                    out.push_str("</member>");
                }
                out.push_str("</Groups>");
                list_tail(&mut out, &page.iter().map(|(n, _)| *n).collect::<Vec<_>>(), truncated);
            }
            "DeleteGroup" => {
                let name = p.req("GroupName")?;
                self.authorize(cred, action, &group_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.delete_group(name)).await?;
            }
            "AddUserToGroup" | "RemoveUserFromGroup" => {
                let (group, user) = (p.req("GroupName")?, p.req("UserName")?);
                self.authorize(cred, action, &group_res(&*self.state.lock().await, group))?;
                let add = action == "AddUserToGroup";
                self.mutate(|s| {
                    if add {
                        s.add_user_to_group(group, user)
                    } else {
                        s.remove_user_from_group(group, user)
                    }
                })
                .await?;
            }
            "PutGroupPolicy" => {
                let (name, pname, doc) = (p.req("GroupName")?, p.req("PolicyName")?, p.req("PolicyDocument")?);
                self.authorize(cred, action, &group_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.put_group_policy(name, pname, doc)).await?;
            }
            "GetGroupPolicy" => {
                let (name, pname) = (p.req("GroupName")?, p.req("PolicyName")?);
                let state = self.state.lock().await;
                self.authorize(cred, action, &group_res(&state, name))?;
                let doc = state
                    .group(name)?
                    .inline
                    .get(pname)
                    .ok_or_else(|| IamError::NoSuchEntity(format!("The group policy with name {pname} cannot be found.")))?;
                el(&mut out, "GroupName", name);
                el(&mut out, "PolicyName", pname);
                policy_doc(&mut out, doc);
            }
            "ListGroupPolicies" => {
                let name = p.req("GroupName")?;
                let state = self.state.lock().await;
                self.authorize(cred, action, &group_res(&state, name))?;
                names_xml(&mut out, "PolicyNames", state.group(name)?.inline.keys());
            }
            "DeleteGroupPolicy" => {
                let (name, pname) = (p.req("GroupName")?, p.req("PolicyName")?);
                self.authorize(cred, action, &group_res(&*self.state.lock().await, name))?;
                self.mutate(|s| s.delete_group_policy(name, pname)).await?;
            }
            "AttachGroupPolicy" | "DetachGroupPolicy" => {
                let (name, arn) = (p.req("GroupName")?, p.req("PolicyArn")?);
                self.authorize(cred, action, &group_res(&*self.state.lock().await, name))?;
                let attach = action == "AttachGroupPolicy";
                self.mutate(|s| {
                    if attach {
                        s.attach_group_policy(name, arn)
                    } else {
                        s.detach_group_policy(name, arn)
                    }
                })
                .await?;
            }
            "ListAttachedGroupPolicies" => {
                let name = p.req("GroupName")?;
                let state = self.state.lock().await;
                self.authorize(cred, action, &group_res(&state, name))?;
                attached_xml(&mut out, &state, &state.group(name)?.attached);
            }
            "CreatePolicy" => {
                let (name, doc) = (p.req("PolicyName")?, p.req("PolicyDocument")?);
                self.authorize(cred, action, &identity::policy_arn(p.path(), name))?;
                let (path, desc) = (p.path().to_owned(), p.opt("Description").unwrap_or("").to_owned());
                self.mutate(|s| {
                    let (n, pol) = s.create_policy(name, &path, doc, &desc)?;
                    let (n, pol) = (n.clone(), pol.clone());
                    out.push_str("<Policy>");
                    policy_xml(&mut out, s, &n, &pol);
                    out.push_str("</Policy>");
                    Ok(())
                })
                .await?;
            }
            "GetPolicy" | "GetPolicyVersion" => {
                let arn = p.req("PolicyArn")?;
                self.authorize(cred, action, arn)?;
                let state = self.state.lock().await;
                let (name, pol) = state.policy_by_arn(arn)?;
                if action == "GetPolicy" {
                    out.push_str("<Policy>");
                    policy_xml(&mut out, &state, name, pol);
                    out.push_str("</Policy>");
                } else {
                    if p.req("VersionId")? != "v1" {
                        return Err(IamError::NoSuchEntity(format!("Policy {arn} version {} does not exist.", p.req("VersionId")?)).into());
                    }
                    out.push_str("<PolicyVersion>");
                    policy_doc(&mut out, &pol.document);
                    el(&mut out, "VersionId", "v1");
                    el(&mut out, "IsDefaultVersion", "true");
                    el(&mut out, "CreateDate", &iso8601(pol.created));
                    out.push_str("</PolicyVersion>");
                }
            }
            "ListPolicies" => {
                self.authorize(cred, action, &all("policy"))?;
                let state = self.state.lock().await;
                // Only customer-managed policies exist here: Scope=AWS lists nothing.
                let aws_only = p.opt("Scope") == Some("AWS");
                let attached_only = p.opt("OnlyAttached") == Some("true");
                let prefix = p.opt("PathPrefix").unwrap_or("/");
                let items = state
                    .policies
                    .iter()
                    .filter(|(n, pol)| !aws_only && pol.path.starts_with(prefix) && (!attached_only || state.attachment_count(n) > 0));
                let (page, truncated) = paginate(items, p.page()?);
                out.push_str("<Policies>");
                for (name, pol) in &page {
                    out.push_str("<member>");
                    policy_xml(&mut out, &state, name, pol);
                    out.push_str("</member>");
                }
                out.push_str("</Policies>");
                list_tail(&mut out, &page.iter().map(|(n, _)| *n).collect::<Vec<_>>(), truncated);
            }
            "DeletePolicy" => {
                let arn = p.req("PolicyArn")?;
                self.authorize(cred, action, arn)?;
                self.mutate(|s| s.delete_policy(arn)).await?;
            }
            other => {
                return Err(api_err(
                    400,
                    "InvalidAction",
                    format!("The action {other} is not valid for this web service (Quarry serves a subset of IAM; see README)."),
                ));
            }
        }
        Ok(out)
    }

    /// CreateAccount, ListAccounts, DeleteAccount (the caller is the default root).
    async fn account_action(&self, action: &str, p: &Params) -> ApiResult<String> {
        let mut out = String::new();
        let account_xml = |out: &mut String, id: &str, a: &identity::Account| {
            el(out, "AccountId", id);
            el(out, "AccountName", &a.name);
            el(out, "Email", &a.email);
            el(out, "CanonicalUserId", &a.canonical_id);
            el(out, "CreateDate", &iso8601(a.created));
        };
        match action {
            "CreateAccount" => {
                let name = p.req("AccountName")?;
                let email = p.opt("Email").unwrap_or("");
                self.mutate(|s| {
                    let (id, a) = s.create_account(name, email)?;
                    out.push_str("<Account>");
                    account_xml(&mut out, &id, a);
                    el(&mut out, "AccessKeyId", &a.access_key);
                    el(&mut out, "SecretAccessKey", &a.secret);
                    out.push_str("</Account>");
                    Ok(())
                })
                .await?;
            }
            "ListAccounts" => {
                let state = self.state.lock().await;
                out.push_str("<Accounts>");
                for (id, a) in &state.accounts {
                    out.push_str("<member>");
                    account_xml(&mut out, id, a);
                    el(&mut out, "AccessKeyId", &a.access_key);
                    out.push_str("</member>");
                }
                out.push_str("</Accounts>");
            }
            _ => {
                let id = p.req("AccountId")?;
                if self.store.list_buckets().iter().any(|b| b.owner.as_deref() == Some(id)) {
                    return Err(IamError::DeleteConflict("The account still owns buckets; delete them first.".into()).into());
                }
                self.mutate(|s| s.delete_account(id)).await?;
            }
        }
        Ok(out)
    }

    async fn sts_action(&self, action: &str, p: &Params, cred: &Credential) -> ApiResult<String> {
        let mut out = String::new();
        match action {
            "GetCallerIdentity" => {
                let mut context = HashMap::new();
                let arn = identity_context(cred, &mut context);
                let id = context.remove("aws:userid").and_then(|v| v.into_iter().next()).unwrap_or_default();
                el(&mut out, "Arn", &arn);
                el(&mut out, "UserId", &id);
                el(&mut out, "Account", &cred.principal.account);
            }
            "GetSessionToken" => {
                if cred.principal.account != identity::ACCOUNT_ID {
                    return Err(api_err(
                        501,
                        "NotImplemented",
                        "GetSessionToken is served for the default account's identities only",
                    ));
                }
                if cred.session.is_some() {
                    return Err(api_err(403, "AccessDenied", "Cannot call GetSessionToken with session credentials"));
                }
                // AWS: 900 s to 36 h for users, at most 1 h for an account root.
                let max = if cred.principal.root { 3600 } else { 129_600 };
                let duration = match p.opt("DurationSeconds") {
                    None => max.min(43_200),
                    Some(d) => match d.parse::<i64>() {
                        Ok(d) if (self.min_session..=max).contains(&d) => d,
                        _ => {
                            return Err(api_err(
                                400,
                                "ValidationError",
                                format!("DurationSeconds must be between {} and {max}", self.min_session),
                            ));
                        }
                    },
                };
                if p.opt("SerialNumber").is_some() || p.opt("TokenCode").is_some() {
                    return Err(api_err(501, "NotImplemented", "MFA is not supported"));
                }
                let parent = (!cred.principal.root).then(|| cred.principal.name.clone());
                let (id, s) = self
                    .mutate(|st| st.create_session(parent.as_deref(), None, "", "", duration, None))
                    .await?;
                out.push_str("<Credentials>");
                el(&mut out, "AccessKeyId", &id);
                el(&mut out, "SecretAccessKey", &s.secret);
                el(&mut out, "SessionToken", &s.token);
                el(&mut out, "Expiration", &iso8601(s.expires));
                out.push_str("</Credentials>");
            }
            "AssumeRole" => {
                if cred.principal.account != identity::ACCOUNT_ID {
                    return Err(api_err(
                        501,
                        "NotImplemented",
                        "AssumeRole is served for the default account's identities only",
                    ));
                }
                if cred.session.is_some() {
                    return Err(api_err(
                        403,
                        "AccessDenied",
                        "temporary credentials cannot assume a role (role chaining is not supported)",
                    ));
                }
                let role_arn = p.req("RoleArn")?;
                let session = p.req("RoleSessionName")?;
                if !(20..=2048).contains(&role_arn.len()) {
                    return Err(api_err(400, "ValidationError", "RoleArn must be 20 to 2048 characters"));
                }
                if session.len() < 2 || identity::check_name("roleSessionName", session, 64).is_err() {
                    return Err(api_err(
                        400,
                        "ValidationError",
                        "RoleSessionName must be 2 to 64 characters of letters, digits and +=,.@-_",
                    ));
                }
                if p.0.keys().any(|k| k.starts_with("PolicyArns.")) {
                    return Err(api_err(
                        400,
                        "ValidationError",
                        "PolicyArns session policies are not supported; pass Policy",
                    ));
                }
                let duration = match p.opt("DurationSeconds") {
                    None => 3600,
                    Some(d) => match d.parse::<i64>() {
                        Ok(d) if (self.min_session..=43_200).contains(&d) => d,
                        _ => {
                            return Err(api_err(
                                400,
                                "ValidationError",
                                format!("DurationSeconds must be between {} and 43200", self.min_session),
                            ));
                        }
                    },
                };
                let parent = (!cred.principal.root).then(|| cred.principal.name.clone());
                let policy = p.opt("Policy");
                // A role of this account must exist, trust the caller, and the caller's own
                // policies must allow sts:AssumeRole on it (root's always do). Any other
                // RoleArn keeps the compatibility form: a session of the caller itself.
                let role = {
                    let state = self.state.lock().await;
                    let named = role_arn.starts_with(&format!("arn:aws:iam::{}:role/", identity::ACCOUNT_ID));
                    match state.role_by_arn(role_arn) {
                        Some((name, r)) => Some((name.clone(), r.trust.clone(), r.max_session)),
                        None if named => {
                            return Err(api_err(
                                403,
                                "AccessDenied",
                                format!("Not authorized to perform sts:AssumeRole on {role_arn}: no such role"),
                            ));
                        }
                        None => None,
                    }
                };
                if let Some((_, trust, max)) = &role {
                    let mut context = HashMap::new();
                    let principal = identity_context(cred, &mut context);
                    let req = Request {
                        action: "sts:AssumeRole".into(),
                        resource: role_arn.to_owned(),
                        principal: principal.clone(),
                        context,
                    };
                    let trust = super::policy::Policy::parse_trust(trust).ok();
                    let trusted = trust.as_ref().is_some_and(|t| t.evaluate(&req) == Decision::Allow);
                    // As on AWS: a trust policy that names the caller itself is enough; one
                    // that trusts the whole account (or anyone) also needs the caller's own
                    // policies to allow sts:AssumeRole. Which it is shows by asking again
                    // for another principal of the same account.
                    let probe = Request {
                        principal: format!("arn:aws:iam::{}:user/\u{0}quarry-probe", identity::ACCOUNT_ID),
                        ..req.clone()
                    };
                    let named = trusted && trust.as_ref().is_some_and(|t| t.evaluate(&probe) != Decision::Allow);
                    if !trusted || !(named || allows(cred, &req, None)) {
                        return Err(api_err(
                            403,
                            "AccessDenied",
                            format!("User: {principal} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"),
                        ));
                    }
                    if duration > *max {
                        return Err(api_err(
                            400,
                            "ValidationError",
                            format!("The requested DurationSeconds exceeds the MaxSessionDuration ({max}) set for this role."),
                        ));
                    }
                }
                let role_name = role.map(|(n, _, _)| n);
                let (id, s) = self
                    .mutate(|st| st.create_session(parent.as_deref(), role_name.as_deref(), role_arn, session, duration, policy))
                    .await?;
                let role = role_arn.rsplit('/').next().unwrap_or("session");
                out.push_str("<Credentials>");
                el(&mut out, "AccessKeyId", &id);
                el(&mut out, "SecretAccessKey", &s.secret);
                el(&mut out, "SessionToken", &s.token);
                el(&mut out, "Expiration", &iso8601(s.expires));
                out.push_str("</Credentials><AssumedRoleUser>");
                el(
                    &mut out,
                    "Arn",
                    &format!("arn:aws:sts::{}:assumed-role/{role}/{session}", identity::ACCOUNT_ID),
                );
                el(&mut out, "AssumedRoleId", &format!("{}:{session}", s.id));
                out.push_str("</AssumedRoleUser>");
            }
            other => {
                return Err(api_err(
                    400,
                    "InvalidAction",
                    format!(
                        "The action {other} is not valid for this web service (Quarry serves AssumeRole, GetSessionToken and GetCallerIdentity)."
                    ),
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_form_bodies_and_name_missing_members() {
        let p = Params::parse(
            "Version=2010-05-08",
            b"Action=PutUserPolicy&UserName=a%2Bb&PolicyDocument=%7B%22x%22%3A+1%7D",
        )
        .unwrap();
        assert_eq!(p.opt("Action"), Some("PutUserPolicy"));
        assert_eq!(p.opt("UserName"), Some("a+b"));
        assert_eq!(p.opt("PolicyDocument"), Some("{\"x\": 1}"));
        assert_eq!(p.opt("Version"), Some("2010-05-08"));
        let e = p.req("GroupName").err().unwrap();
        assert_eq!((e.status, e.code), (400, "ValidationError"));
        assert!(e.message.contains("'groupName'"));
        assert!(Params::parse("", b"A=%zz").is_err());
        assert!(Params::parse("", &[0xff, b'=', b'1']).is_err());
        let page = Params::parse("", b"MaxItems=0").unwrap();
        assert!(page.page().is_err());
    }

    #[test]
    fn lists_page_after_the_marker() {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let items = || names.iter().map(|n| (n, ()));
        let (page, more) = paginate(items(), (2, None));
        assert_eq!(page.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(more);
        let (page, more) = paginate(items(), (2, Some("b")));
        assert_eq!(page.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["c", "d"]);
        assert!(!more);
    }

    #[test]
    fn xml_is_escaped_and_dates_are_iso8601() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_764_133_200), "2025-11-26T05:00:00Z");
        let resp = error_response(IAM_NS, &api_err(404, "NoSuchEntity", "user <x> missing"));
        assert_eq!(resp.status(), 404);
    }
}
