//! AWS Signature Version 4 for the IAM and STS query APIs (s3s verifies S3's own
//! requests; its verifier accepts only the `s3` and `sts` services). Used both to verify
//! requests the server receives and to sign the ones `quarry admin` sends, so the two
//! cannot drift apart.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Lower-case hex of SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_simd::encode_to_string(Sha256::digest(data), hex_simd::AsciiCase::Lower)
}

/// URI-encode as SigV4 does: everything but `A-Za-z0-9-._~` as `%XX`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case, in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    /// Parse the header's value; `None` when it is not a SigV4 header.
    pub fn parse(value: &str) -> Option<Authorization> {
        let rest = value.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
        let (mut cred, mut signed, mut sig) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            match k {
                "Credential" => cred = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => sig = Some(v),
                _ => {}
            }
        }
        let mut scope = cred?.split('/');
        let access_key = scope.next()?.to_owned();
        let date = scope.next()?.to_owned();
        let region = scope.next()?.to_owned();
        let service = scope.next()?.to_owned();
        if scope.next()? != "aws4_request" || scope.next().is_some() || access_key.is_empty() {
            return None;
        }
        Some(Authorization {
            access_key,
            date,
            region,
            service,
            signed_headers: signed?.split(';').map(str::to_ascii_lowercase).collect(),
            signature: sig?.to_owned(),
        })
    }
}

/// The service a request's SigV4 credential scope names (`s3`, `iam`, `sts`...), from
/// its Authorization header; `None` for other or no signatures.
pub fn signed_service(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let cred = v.strip_prefix("AWS4-HMAC-SHA256")?;
    let start = cred.find("Credential=")? + "Credential=".len();
    let scope = cred[start..].split([',', ' ']).next()?;
    scope.split('/').nth(3)
}

/// What is signed: the canonical request's hash under the credential scope.
pub fn string_to_sign(amz_date: &str, date: &str, region: &str, service: &str, canonical_request: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The hex signature of `string_to_sign` with `secret`.
pub fn signature(secret: &str, date: &str, region: &str, service: &str, string_to_sign: &str) -> String {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    hex_simd::encode_to_string(hmac(&k, string_to_sign.as_bytes()), hex_simd::AsciiCase::Lower)
}

/// The canonical request. `query` is the raw query string (re-encoded and sorted here);
/// `headers` are the signed headers' (lower-case name, value) pairs, sorted by name.
pub fn canonical_request(method: &str, path: &str, query: &str, headers: &[(String, String)], payload_hash: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                let b = crate::s3::convert::form_decode(s, true).expect("lenient decoding always succeeds");
                uri_encode(&String::from_utf8_lossy(&b), false)
            };
            (dec(k), dec(v))
        })
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut out = format!("{method}\n{}\n{}\n", if path.is_empty() { "/" } else { path }, query.join("&"));
    for (k, v) in headers {
        let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push_str(&format!("{k}:{v}\n"));
    }
    let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    out.push_str(&format!("\n{}\n{payload_hash}", names.join(";")));
    out
}

/// `YYYYMMDDTHHMMSSZ` as Unix seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(num(0..4)?).ok()?, month, u8::try_from(num(6..8)?).ok()?).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp())
}

/// Constant-time comparison of two signatures.
pub fn same_signature(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a request's signature was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// Missing or malformed parts (IncompleteSignature).
    Incomplete(&'static str),
    /// The request is more than 15 minutes from the server's clock.
    Skewed,
    /// The signature does not match.
    Mismatch,
}

/// Verify a header-signed request with `secret`. `now` is Unix seconds.
pub fn verify(parts: &http::request::Parts, body: &[u8], auth: &Authorization, secret: &str, now: i64) -> Result<(), VerifyError> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let amz_date = header("x-amz-date").ok_or(VerifyError::Incomplete("x-amz-date is missing"))?;
    let when = parse_amz_date(amz_date).ok_or(VerifyError::Incomplete("x-amz-date is not a date"))?;
    if !amz_date.starts_with(&auth.date) {
        return Err(VerifyError::Incomplete("the credential scope's date is not x-amz-date's"));
    }
    if (now - when).abs() > 15 * 60 {
        return Err(VerifyError::Skewed);
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(VerifyError::Incomplete("the host header must be signed"));
    }
    let mut headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let values: Vec<&str> = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let value = if values.is_empty() && name == "host" {
            parts.uri.authority().map(|a| a.as_str()).unwrap_or("")
        } else if values.is_empty() {
            return Err(VerifyError::Incomplete("a signed header is missing"));
        } else {
            &values.iter().map(|v| v.trim()).collect::<Vec<_>>().join(",")
        };
        headers.push((name.clone(), value.to_owned()));
    }
    headers.sort();
    let payload = header("x-amz-content-sha256").map_or_else(|| sha256_hex(body), str::to_owned);
    if payload != "UNSIGNED-PAYLOAD" && payload != sha256_hex(body) {
        return Err(VerifyError::Mismatch);
    }
    let creq = canonical_request(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &headers,
        &payload,
    );
    let sts = string_to_sign(amz_date, &auth.date, &auth.region, &auth.service, &creq);
    let want = signature(secret, &auth.date, &auth.region, &auth.service, &sts);
    if same_signature(&want, &auth.signature) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Headers to add to a form POST so it is signed for `service` (used by `quarry admin`):
/// `x-amz-date`, `x-amz-content-sha256` and `authorization`.
pub fn sign_post(
    host: &str,
    body: &[u8],
    access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: time::OffsetDateTime,
) -> Vec<(&'static str, String)> {
    let amz_date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let date = amz_date[..8].to_owned();
    let payload = sha256_hex(body);
    let headers = vec![
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        ),
        ("host".to_owned(), host.to_owned()),
        ("x-amz-content-sha256".to_owned(), payload.clone()),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ];
    let creq = canonical_request("POST", "/", "", &headers, &payload);
    let sts = string_to_sign(&amz_date, &date, region, service, &creq);
    let sig = signature(secret, &date, region, service, &sts);
    vec![
        ("x-amz-date", amz_date),
        ("x-amz-content-sha256", payload),
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key}/{date}/{region}/{service}/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature={sig}"
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (IAM ListUsers, "Create a signed request" in the SigV4 guide).
    #[test]
    fn aws_example_signature() {
        let headers = vec![
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
            ),
            ("host".to_owned(), "iam.amazonaws.com".to_owned()),
            ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()),
        ];
        let creq = canonical_request("GET", "/", "Action=ListUsers&Version=2010-05-08", &headers, &sha256_hex(b""));
        assert_eq!(
            sha256_hex(creq.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let sts = string_to_sign("20150830T123600Z", "20150830", "us-east-1", "iam", &creq);
        let sig = signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam", &sts);
        assert_eq!(sig, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    }

    #[test]
    fn signed_requests_verify_and_tampering_fails() {
        let now = time::OffsetDateTime::now_utc();
        let body = b"Action=ListUsers&Version=2010-05-08";
        let signed = sign_post("127.0.0.1:9000", body, "AKID", "secret", "us-east-1", "iam", now);
        let build = |body_sig: &[(&'static str, String)]| {
            let mut b = http::Request::builder()
                .method("POST")
                .uri("/")
                .header("host", "127.0.0.1:9000")
                .header("content-type", "application/x-www-form-urlencoded; charset=utf-8");
            for (k, v) in body_sig {
                b = b.header(*k, v);
            }
            b.body(()).unwrap().into_parts().0
        };
        let parts = build(&signed);
        let auth = Authorization::parse(parts.headers["authorization"].to_str().unwrap()).unwrap();
        assert_eq!(auth.service, "iam");
        assert_eq!(signed_service(&parts.headers), Some("iam"));
        let t = now.unix_timestamp();
        assert_eq!(verify(&parts, body, &auth, "secret", t), Ok(()));
        assert_eq!(verify(&parts, body, &auth, "other", t), Err(VerifyError::Mismatch));
        assert_eq!(verify(&parts, b"Action=DeleteUser", &auth, "secret", t), Err(VerifyError::Mismatch));
        assert_eq!(verify(&parts, body, &auth, "secret", t + 3600), Err(VerifyError::Skewed));
        assert!(Authorization::parse("AWS AKID:sig").is_none());
        assert!(Authorization::parse("AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=x").is_none());
    }
}
