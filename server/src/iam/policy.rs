//! The IAM policy language (Version 2012-10-17), compiled once and evaluated per request.
//!
//! A [`Policy`] is parsed from JSON and validated (`MalformedPolicy` on anything AWS would
//! refuse); evaluation matches Action/NotAction, Resource/NotResource, Principal and
//! Condition against a [`Request`]. [`decide`] applies AWS's logic over every policy that
//! applies to a request: an explicit Deny wins, then any Allow, else the implicit deny.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;

/// Why a policy document was refused (AWS: `MalformedPolicyDocument` / `MalformedPolicy`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn bad(msg: impl Into<String>) -> PolicyError {
    PolicyError(msg.into())
}

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
    /// Every condition key and policy variable the policy reads, lower-cased, sorted:
    /// the request context needs these and no others.
    needs: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    /// Action patterns, and whether they are a NotAction.
    actions: (Vec<Pattern>, bool),
    /// Resource patterns and whether they are a NotResource; `None`: no Resource element
    /// (allowed in bucket policies only with Principal; here: matches nothing).
    resources: Option<(Vec<Pattern>, bool)>,
    /// Principal patterns and whether they are a NotPrincipal; `None`: an identity policy.
    principals: Option<(Vec<Pattern>, bool)>,
    conditions: Vec<Condition>,
}

/// A pattern with `*` and `?` wildcards and `${...}` policy variables.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    /// Compare case-insensitively (actions are; resources are not).
    fold_case: bool,
    /// Length of the literal start (before any wildcard or variable): a value that does
    /// not start with it is rejected without expanding anything.
    literal: usize,
}

impl Pattern {
    fn new(text: String, fold_case: bool) -> Self {
        let literal = text.find(['*', '?', '$']).unwrap_or(text.len());
        Self { text, fold_case, literal }
    }
}

#[derive(Debug, Clone)]
struct Condition {
    op: Op,
    /// `ForAnyValue:` / `ForAllValues:` for multi-valued keys.
    set: SetOp,
    /// `...IfExists`: a missing key satisfies the condition.
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Null,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        use Op::*;
        Some(match name {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnNotEquals" => ArnNotEquals,
            "ArnLike" => ArnLike,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => return None,
        })
    }

    /// Operators whose match is the negation of a positive test.
    fn negated(self) -> bool {
        use Op::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }
}

/// What a request is, as policies see it.
#[derive(Debug, Default, Clone)]
pub struct Request {
    /// `s3:GetObject`, `iam:CreateUser`...
    pub action: String,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: String,
    /// The caller's ARN (`arn:aws:iam::ACCOUNT:user/NAME`), or `*` for anonymous.
    pub principal: String,
    /// Condition keys (`aws:username`, `s3:prefix`...), lower-cased, each with its values.
    pub context: HashMap<String, Vec<String>>,
}

impl Request {
    fn values(&self, key: &str) -> Option<&[String]> {
        if let Some(v) = self.context.get(key) {
            return Some(v);
        }
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.context.get(&key.to_ascii_lowercase()).map(Vec::as_slice);
        }
        None
    }

    /// Replace `${aws:username}`-style variables; `None` when one has no value (the
    /// pattern then matches nothing, as on AWS). `${*}`, `${?}`, `${$}` are literal.
    fn expand<'t>(&self, text: &'t str) -> Option<std::borrow::Cow<'t, str>> {
        if !text.contains("${") {
            return Some(std::borrow::Cow::Borrowed(text));
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[i..]);
                return Some(out.into());
            };
            let name = &after[..end];
            match name {
                "*" => out.push('\u{1}'),
                "?" => out.push('\u{2}'),
                "$" => out.push('$'),
                _ => out.push_str(self.values(name)?.first()?),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Some(out.into())
    }
}

/// The outcome of one policy for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An Allow statement matched and no Deny did.
    Allow,
    /// A Deny statement matched.
    Deny,
    /// No statement matched.
    NotApplicable,
}

/// AWS's evaluation over every policy that applies: an explicit Deny anywhere wins, then an
/// Allow anywhere, else the request is denied implicitly.
pub fn decide<'a>(policies: impl IntoIterator<Item = &'a Policy>, req: &Request) -> bool {
    let mut allowed = false;
    for p in policies {
        match p.evaluate(req) {
            Decision::Deny => return false,
            Decision::Allow => allowed = true,
            Decision::NotApplicable => {}
        }
    }
    allowed
}

impl Policy {
    /// Parse and validate a policy document. `resource_policy` is true for bucket policies
    /// (which must name a Principal) and false for identity policies (which must not).
    /// A role's trust policy: a resource policy whose statements name principals and
    /// actions (`sts:AssumeRole`) but no Resource (the role is the resource).
    pub fn parse_trust(text: &str) -> Result<Policy, PolicyError> {
        let mut doc: Value = serde_json::from_str(text).map_err(|e| bad(format!("the policy is not JSON: {e}")))?;
        let statements = match doc.get_mut("Statement") {
            Some(Value::Array(a)) => a.iter_mut().collect::<Vec<_>>(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => Vec::new(),
        };
        for st in statements {
            if let Value::Object(o) = st {
                if o.contains_key("Resource") || o.contains_key("NotResource") {
                    return Err(bad("a trust policy names no Resource (the role is the resource)"));
                }
                o.insert("Resource".into(), Value::String("*".into()));
            }
        }
        Policy::parse(&doc.to_string(), true)
    }

    pub fn parse(text: &str, resource_policy: bool) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| bad(format!("the policy is not JSON: {e}")))?;
        let obj = doc.as_object().ok_or_else(|| bad("the policy must be a JSON object"))?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(bad(format!("unknown policy element {key:?}")));
            }
        }
        match obj.get("Version").and_then(Value::as_str) {
            Some("2012-10-17") | Some("2008-10-17") | None => {}
            Some(v) => return Err(bad(format!("the policy version {v:?} is not supported (use 2012-10-17)"))),
        }
        let statements = match obj.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
            Some(s @ Value::Object(_)) => vec![s],
            _ => return Err(bad("the policy needs a Statement")),
        };
        if statements.is_empty() {
            return Err(bad("the policy has no statements"));
        }
        let statements = statements
            .into_iter()
            .map(|s| Statement::parse(s, resource_policy))
            .collect::<Result<Vec<_>, _>>()?;
        let mut needs = Vec::new();
        let mut vars = |text: &str| {
            let mut rest = text;
            while let Some(i) = rest.find("${") {
                let after = &rest[i + 2..];
                let Some(end) = after.find('}') else { break };
                if !matches!(&after[..end], "*" | "?" | "$") {
                    needs.push(after[..end].to_ascii_lowercase());
                }
                rest = &after[end + 1..];
            }
        };
        for st in &statements {
            let pats = st
                .actions
                .0
                .iter()
                .chain(st.resources.iter().flat_map(|r| &r.0))
                .chain(st.principals.iter().flat_map(|p| &p.0));
            for p in pats {
                vars(&p.text);
            }
            for c in &st.conditions {
                c.values.iter().for_each(|v| vars(v));
            }
        }
        needs.extend(statements.iter().flat_map(|st| st.conditions.iter().map(|c| c.key.clone())));
        needs.sort();
        needs.dedup();
        Ok(Policy { statements, needs })
    }

    /// The condition keys and policy variables this policy reads (lower-case): a request
    /// context needs only these.
    pub fn needs(&self) -> &[String] {
        &self.needs
    }

    /// This policy's decision for `req`.
    pub fn evaluate(&self, req: &Request) -> Decision {
        let mut allow = false;
        for s in &self.statements {
            if s.matches(req) {
                match s.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => allow = true,
                }
            }
        }
        if allow { Decision::Allow } else { Decision::NotApplicable }
    }

    /// Whether every Resource/NotResource names `bucket` or objects in it (a bucket policy
    /// may only speak of its own bucket).
    /// A wildcard resource counts when it can name the bucket or an object in it
    /// (`arn:aws:s3:::*`, `arn:aws:s3:::*/*`, `arn:aws:s3:::buck*`), as AWS accepts it.
    pub fn resources_within(&self, bucket: &str) -> bool {
        let arn = format!("arn:aws:s3:::{bucket}");
        let objects = format!("{arn}/");
        self.statements.iter().all(|s| {
            s.resources.as_ref().is_some_and(|(rs, _)| {
                rs.iter().all(|r| {
                    r.text == arn
                        || r.text.starts_with(&objects)
                        || glob(r.text.as_bytes(), arn.as_bytes())
                        || glob_prefix(r.text.as_bytes(), objects.as_bytes())
                })
            })
        })
    }

    /// Whether any Allow statement grants to everyone (`"Principal": "*"` or
    /// `{"AWS": "*"}`) without conditions: the bucket is public (GetBucketPolicyStatus).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.conditions.is_empty()
                && matches!(&s.principals, Some((p, false)) if p.iter().any(|p| p.text == "*"))
        })
    }
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad(format!("{what} values must be strings"))),
            })
            .collect(),
        _ => Err(bad(format!("{what} must be a string or a non-empty list of strings"))),
    }
}

/// Condition values: strings, numbers and booleans are all written as text.
fn condition_values(v: &Value) -> Result<Vec<String>, PolicyError> {
    let one = |x: &Value| match x {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(bad("condition values must be strings, numbers or booleans")),
    };
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        x => Ok(vec![one(x)?]),
    }
}

impl Statement {
    fn parse(v: &Value, resource_policy: bool) -> Result<Statement, PolicyError> {
        let o = v.as_object().ok_or_else(|| bad("each statement must be a JSON object"))?;
        for key in o.keys() {
            if !matches!(
                key.as_str(),
                "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Principal" | "NotPrincipal" | "Condition"
            ) {
                return Err(bad(format!("unknown statement element {key:?}")));
            }
        }
        let effect = match o.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(bad("Effect must be \"Allow\" or \"Deny\"")),
        };
        let actions = match (o.get("Action"), o.get("NotAction")) {
            (Some(a), None) => (strings(a, "Action")?, false),
            (None, Some(a)) => (strings(a, "NotAction")?, true),
            _ => return Err(bad("a statement needs exactly one of Action and NotAction")),
        };
        for a in &actions.0 {
            if a != "*" && !a.contains(':') {
                return Err(bad(format!("action {a:?} must be service:action (s3:GetObject)")));
            }
        }
        let resources = match (o.get("Resource"), o.get("NotResource")) {
            (Some(r), None) => Some((strings(r, "Resource")?, false)),
            (None, Some(r)) => Some((strings(r, "NotResource")?, true)),
            (None, None) => None,
            _ => return Err(bad("a statement takes Resource or NotResource, not both")),
        };
        if let Some((rs, _)) = &resources {
            for r in rs {
                if r != "*" && !r.starts_with("arn:") {
                    return Err(bad(format!("resource {r:?} must be an ARN (arn:aws:s3:::bucket/key)")));
                }
            }
        } else {
            return Err(bad("a statement needs Resource or NotResource"));
        }
        let principals = match (o.get("Principal"), o.get("NotPrincipal")) {
            (Some(p), None) => Some((principal_list(p)?, false)),
            // As AWS: NotPrincipal only narrows a Deny; an Allow to "everyone but" is refused.
            (None, Some(_)) if effect == Effect::Allow => {
                return Err(bad("NotPrincipal is supported only with \"Effect\": \"Deny\""));
            }
            (None, Some(p)) => Some((principal_list(p)?, true)),
            (None, None) => None,
            _ => return Err(bad("a statement takes Principal or NotPrincipal, not both")),
        };
        if resource_policy && principals.is_none() {
            return Err(bad("a bucket policy statement needs a Principal"));
        }
        if !resource_policy && principals.is_some() {
            return Err(bad("an identity policy cannot name a Principal"));
        }
        let mut conditions = Vec::new();
        if let Some(c) = o.get("Condition") {
            let c = c.as_object().ok_or_else(|| bad("Condition must be an object"))?;
            for (op_name, block) in c {
                let (set, rest) = if let Some(r) = op_name.strip_prefix("ForAnyValue:") {
                    (SetOp::AnyValue, r)
                } else if let Some(r) = op_name.strip_prefix("ForAllValues:") {
                    (SetOp::AllValues, r)
                } else {
                    (SetOp::Single, op_name.as_str())
                };
                let (if_exists, base) = match rest.strip_suffix("IfExists") {
                    Some(b) if b != "Null" => (true, b),
                    _ => (false, rest),
                };
                let op = Op::parse(base).ok_or_else(|| bad(format!("unknown condition operator {op_name:?}")))?;
                let block = block
                    .as_object()
                    .ok_or_else(|| bad(format!("condition {op_name} must map keys to values")))?;
                for (key, values) in block {
                    let values = condition_values(values)?;
                    check_values(op, &values)?;
                    conditions.push(Condition {
                        op,
                        set,
                        if_exists,
                        key: key.to_ascii_lowercase(),
                        values,
                    });
                }
            }
        }
        let pats = |v: Vec<String>, fold_case: bool| v.into_iter().map(|text| Pattern::new(text, fold_case)).collect::<Vec<_>>();
        Ok(Statement {
            effect,
            actions: (pats(actions.0, true), actions.1),
            resources: resources.map(|(r, not)| (pats(r, false), not)),
            principals: principals.map(|(p, not)| (pats(p, false), not)),
            conditions,
        })
    }

    fn matches(&self, req: &Request) -> bool {
        let (actions, not_action) = &self.actions;
        if actions.iter().any(|p| p.matches(&req.action, req)) == *not_action {
            return false;
        }
        match &self.resources {
            Some((rs, not)) => {
                if rs.iter().any(|p| p.matches(&req.resource, req)) == *not {
                    return false;
                }
            }
            None => return false,
        }
        if let Some((ps, not)) = &self.principals
            && ps.iter().any(|p| p.text == "*" || p.matches(&req.principal, req)) == *not
        {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(req))
    }
}

/// `"*"`, `{"AWS": "arn..." | ["arn..."]}`; an account id or `arn:aws:iam::ID:root` stands for
/// the whole account.
fn principal_list(v: &Value) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(vec!["*".into()]),
        Value::Object(o) => {
            let mut out = Vec::new();
            for (k, v) in o {
                if k == "Service" || k == "Federated" {
                    // Valid on AWS; no Quarry request is signed by an AWS service or a
                    // federated provider, so these name no one here (they never match).
                    for p in strings(v, "Principal")? {
                        out.push(format!("{}:{p}", k.to_ascii_lowercase()));
                    }
                    continue;
                }
                if k != "AWS" {
                    return Err(bad(format!("principal type {k:?} is not supported (use \"AWS\")")));
                }
                for p in strings(v, "Principal")? {
                    // An account id, or its root ARN, stands for every principal of the
                    // account (its users and sessions still need their own permissions).
                    let account = if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
                        Some(p.clone())
                    } else {
                        p.strip_prefix("arn:aws:iam::")
                            .and_then(|r| r.strip_suffix(":root"))
                            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
                            .map(str::to_owned)
                    };
                    match account {
                        Some(a) => {
                            out.push(format!("arn:aws:iam::{a}:*"));
                            out.push(format!("arn:aws:sts::{a}:*"));
                        }
                        None => out.push(p),
                    }
                }
            }
            if out.is_empty() {
                return Err(bad("Principal names no one"));
            }
            Ok(out)
        }
        _ => Err(bad("Principal must be \"*\" or {\"AWS\": ...}")),
    }
}

fn check_values(op: Op, values: &[String]) -> Result<(), PolicyError> {
    use Op::*;
    for v in values {
        let ok = match op {
            NumericEquals | NumericNotEquals | NumericLessThan | NumericLessThanEquals | NumericGreaterThan | NumericGreaterThanEquals => {
                v.parse::<f64>().is_ok()
            }
            DateEquals | DateNotEquals | DateLessThan | DateLessThanEquals | DateGreaterThan | DateGreaterThanEquals => {
                parse_date(v).is_some()
            }
            Bool | Null => v == "true" || v == "false",
            IpAddress | NotIpAddress => parse_cidr(v).is_some(),
            _ => true,
        };
        if !ok {
            return Err(bad(format!("{v:?} is not a valid value for {op:?}")));
        }
    }
    Ok(())
}

impl Pattern {
    fn matches(&self, value: &str, req: &Request) -> bool {
        let head = &self.text.as_bytes()[..self.literal];
        let Some(start) = value.as_bytes().get(..self.literal) else {
            return false;
        };
        if !(if self.fold_case {
            head.eq_ignore_ascii_case(start)
        } else {
            head == start
        }) {
            return false;
        }
        // The common shapes need no glob: a literal (`s3:GetObject`), and a literal then
        // one trailing `*` (`arn:aws:s3:::bucket/*`).
        let rest = &self.text[self.literal..];
        if rest.is_empty() {
            return value.len() == self.literal;
        }
        if rest == "*" {
            return true;
        }
        let Some(text) = req.expand(&self.text) else {
            return false;
        };
        glob_with(text.as_bytes(), value.as_bytes(), self.fold_case)
    }
}

/// `*` matches any run (also across `/`), `?` one character; `\u{1}`/`\u{2}` are the
/// literal `*` and `?` from `${*}`/`${?}`. Iterative, linear in practice.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    glob_with(pat, s, false)
}

/// Whether some string that starts with `prefix` matches `pat` (`*` any run, `?` one
/// character): the pattern must match all of `prefix`, whatever of it is left over can be
/// matched by the rest of such a string.
fn glob_prefix(pat: &[u8], prefix: &[u8]) -> bool {
    // reach[j]: the pattern read so far can have consumed exactly prefix[..j].
    let mut reach = vec![false; prefix.len() + 1];
    reach[0] = true;
    for &c in pat {
        if reach[prefix.len()] {
            return true;
        }
        let mut next = vec![false; prefix.len() + 1];
        for j in 0..=prefix.len() {
            if !reach[j] {
                continue;
            }
            match c {
                b'*' => next[j..].iter_mut().for_each(|n| *n = true),
                b'?' if j < prefix.len() => next[j + 1] = true,
                _ if j < prefix.len() && prefix[j] == c => next[j + 1] = true,
                _ => {}
            }
        }
        reach = next;
    }
    reach[prefix.len()]
}

/// [`glob`], comparing ASCII letters case-insensitively when `fold`.
fn glob_with(pat: &[u8], s: &[u8], fold: bool) -> bool {
    let same = |a: u8, b: u8| if fold { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (mut p, mut i) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || same(lit(pat[p]), s[i])) && pat[p] != b'*' {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some(p);
            mark = i;
            p += 1;
        } else if let Some(sp) = star {
            p = sp + 1;
            mark += 1;
            i = mark;
        } else {
            return false;
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

fn lit(b: u8) -> u8 {
    match b {
        1 => b'*',
        2 => b'?',
        b => b,
    }
}

fn parse_date(s: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return time::OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    // A date alone: midnight UTC.
    let d = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(d.midnight().assume_utc())
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, b.parse::<u8>().ok()?),
        None => {
            let a = s.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (Ok(ip), Some((net, bits))) = (ip.parse::<IpAddr>(), parse_cidr(cidr)) else {
        return false;
    };
    let (a, b, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (a >> shift) == (b >> shift)
}

impl Condition {
    fn holds(&self, req: &Request) -> bool {
        let present = req.values(&self.key);
        if self.op == Op::Null {
            // `"Null": {"k": "true"}`: the key is absent.
            let absent = present.is_none_or(|v| v.is_empty());
            return self.values.iter().any(|v| (v == "true") == absent);
        }
        let Some(actual) = present.filter(|v| !v.is_empty()) else {
            return match self.set {
                // ForAllValues over no values is vacuously true.
                SetOp::AllValues => true,
                _ => self.if_exists || (self.op.negated() && self.set == SetOp::Single),
            };
        };
        let globbing = matches!(self.op, Op::StringLike | Op::StringNotLike | Op::ArnLike | Op::ArnNotLike);
        let expected: Vec<String> = self
            .values
            .iter()
            .filter_map(|v| req.expand(v))
            // `${*}` and `${?}` are plain characters outside wildcard matching.
            .map(|v| {
                if globbing {
                    v.into_owned()
                } else {
                    v.replace('\u{1}', "*").replace('\u{2}', "?")
                }
            })
            .collect();
        let positive = |a: &str| expected.iter().any(|e| test(self.op, a, e));
        let matched = |a: &str| if self.op.negated() { !positive(a) } else { positive(a) };
        match self.set {
            SetOp::Single | SetOp::AnyValue => actual.iter().any(|a| matched(a)),
            SetOp::AllValues => actual.iter().all(|a| matched(a)),
        }
    }
}

/// The positive form of `op` on one actual value against one expected value.
fn test(op: Op, actual: &str, expected: &str) -> bool {
    use Op::*;
    let num = || Some((actual.parse::<f64>().ok()?, expected.parse::<f64>().ok()?));
    let date = || Some((parse_date(actual)?, parse_date(expected)?));
    match op {
        StringEquals | StringNotEquals | ArnEquals | ArnNotEquals => actual == expected,
        StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => actual.eq_ignore_ascii_case(expected),
        StringLike | StringNotLike | ArnLike | ArnNotLike => glob(expected.as_bytes(), actual.as_bytes()),
        NumericEquals | NumericNotEquals => num().is_some_and(|(a, e)| a == e),
        NumericLessThan => num().is_some_and(|(a, e)| a < e),
        NumericLessThanEquals => num().is_some_and(|(a, e)| a <= e),
        NumericGreaterThan => num().is_some_and(|(a, e)| a > e),
        NumericGreaterThanEquals => num().is_some_and(|(a, e)| a >= e),
        DateEquals | DateNotEquals => date().is_some_and(|(a, e)| a == e),
        DateLessThan => date().is_some_and(|(a, e)| a < e),
        DateLessThanEquals => date().is_some_and(|(a, e)| a <= e),
        DateGreaterThan => date().is_some_and(|(a, e)| a > e),
        DateGreaterThanEquals => date().is_some_and(|(a, e)| a >= e),
        Bool => actual.eq_ignore_ascii_case(expected),
        IpAddress | NotIpAddress => in_cidr(actual, expected),
        Null => false,
    }
}

#[cfg(test)]
mod tests;
