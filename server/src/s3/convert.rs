//! Conversions between `s3s` wire types and `quarry-storage` types, and the request checks
//! several operations share (names, checksums, conditions).

use super::error::StorageResultExt;
use http::HeaderMap;
use quarry_storage::{BucketName, Checksum, ChecksumAlgorithm, ObjectAttrs, ObjectKey, ObjectMeta, VersionId};
use s3s::dto::{self, ETag, ETagCondition, Timestamp, TimestampFormat};
use s3s::{S3Result, s3_error};
use std::time::SystemTime;

/// S3's limit on user metadata: names and values, in bytes.
const MAX_USER_METADATA: usize = 2 * 1024;

/// `application/x-www-form-urlencoded` decoding (`%XX` and `+`) of a query or header value.
/// A malformed escape is `None`, or with `lenient` kept as it is.
pub(crate) fn form_decode(s: &str, lenient: bool) -> Option<Vec<u8>> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ if lenient => out.push(b'%'),
                _ => return None,
            },
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

pub(crate) fn bucket(name: &str) -> S3Result<BucketName> {
    BucketName::new(name).s3()
}

pub(crate) fn key(k: &str) -> S3Result<ObjectKey> {
    ObjectKey::new(k).s3()
}

pub(crate) fn ts(t: SystemTime) -> Timestamp {
    Timestamp::from(t)
}

pub(crate) fn etag(meta: &ObjectMeta) -> ETag {
    ETag::Strong(meta.etag.clone())
}

/// The version a request names (`versionId`), checked.
pub(crate) fn version(version_id: Option<&str>) -> S3Result<Option<VersionId>> {
    match version_id {
        None => Ok(None),
        Some("") => Err(s3_error!(InvalidArgument, "Version id cannot be the empty string")),
        Some(v) => VersionId::parse(v).map(Some).s3(),
    }
}

/// The `x-amz-version-id` a response about `meta` carries: its id, or `null` in a bucket
/// that has versioning configured; nothing in a bucket that never had it.
pub(crate) fn version_header(store: &quarry_storage::Store, bucket: &BucketName, meta: &ObjectMeta) -> Option<String> {
    match &meta.version_id {
        Some(v) => Some(v.clone()),
        None => {
            let state = store.versioning(bucket).unwrap_or_default();
            (state != quarry_storage::Versioning::Unversioned).then(|| "null".to_owned())
        }
    }
}

/// The `x-amz-version-id` a write's answer carries: the new version's id; nothing for a
/// `null` version (a bucket whose versioning is suspended), as AWS answers PUT, POST, copy
/// and CompleteMultipartUpload, though later reads of it name it `null`.
pub(crate) fn written_version(meta: &ObjectMeta) -> Option<String> {
    meta.version_id.clone()
}

fn http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

pub(crate) fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

/// Drop the `aws-chunked` coding the transfer used; what remains is the object's own.
pub(crate) fn content_encoding(v: Option<String>) -> Option<String> {
    let v = v?;
    let rest: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!rest.is_empty()).then(|| rest.join(", "))
}

pub(crate) fn storage_class(sc: Option<&dto::StorageClass>) -> S3Result<Option<String>> {
    const KNOWN: [&str; 9] = [
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER",
        "DEEP_ARCHIVE",
        "GLACIER_IR",
        "EXPRESS_ONEZONE",
    ];
    match sc.map(dto::StorageClass::as_str) {
        None | Some("STANDARD") => Ok(None),
        Some(s) if KNOWN.contains(&s) => Ok(Some(s.to_owned())),
        Some(_) => Err(s3_error!(InvalidStorageClass, "The storage class you specified is not valid")),
    }
}

/// The attributes a PUT, CreateMultipartUpload or CopyObject(REPLACE) sets.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attrs(
    content_type: Option<String>,
    content_encoding_: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<&Timestamp>,
    website_redirect_location: Option<String>,
    metadata: Option<dto::Metadata>,
    sc: Option<&dto::StorageClass>,
) -> S3Result<ObjectAttrs> {
    let user: std::collections::BTreeMap<String, String> = metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let a = ObjectAttrs {
        content_type,
        content_encoding: content_encoding(content_encoding_),
        content_disposition,
        content_language,
        cache_control,
        expires: expires.and_then(http_date),
        website_redirect_location,
        user,
        storage_class: storage_class(sc)?,
        tags: Default::default(),
        owner: None,
        acl: None,
    };
    if a.user_metadata_len() > MAX_USER_METADATA {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size."
        ));
    }
    Ok(a)
}

/// [`attrs`] from an input carrying the standard content headers (PutObject,
/// CreateMultipartUpload, CopyObject with REPLACE); moves the fields out of it.
macro_rules! attrs_of {
    ($i:ident) => {
        $crate::s3::convert::attrs(
            $i.content_type,
            $i.content_encoding,
            $i.content_disposition,
            $i.content_language,
            $i.cache_control,
            $i.expires.as_ref(),
            $i.website_redirect_location,
            $i.metadata,
            $i.storage_class.as_ref(),
        )
    };
}
pub(crate) use attrs_of;

pub(crate) fn user_metadata(a: &ObjectAttrs) -> Option<dto::Metadata> {
    (!a.user.is_empty()).then(|| a.user.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

pub(crate) fn expires(a: &ObjectAttrs) -> Option<Timestamp> {
    a.expires.as_deref().and_then(parse_http_date)
}

/// A storage checksum algorithm as the wire type.
pub(crate) fn wire_algorithm(a: ChecksumAlgorithm) -> dto::ChecksumAlgorithm {
    dto::ChecksumAlgorithm::from(a.as_str().to_owned())
}

/// A storage checksum type as the wire type.
pub(crate) fn wire_kind(k: quarry_storage::ChecksumType) -> dto::ChecksumType {
    dto::ChecksumType::from(k.as_str().to_owned())
}

/// The checksum fields of an S3 response, one of which is filled.
#[derive(Default)]
pub(crate) struct ChecksumFields {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub crc64nvme: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub kind: Option<dto::ChecksumType>,
}

impl ChecksumFields {
    pub(crate) fn from(c: Option<&Checksum>) -> Self {
        let mut f = Self::default();
        let Some(c) = c else { return f };
        let v = Some(c.value.clone());
        match c.algorithm {
            ChecksumAlgorithm::Crc32 => f.crc32 = v,
            ChecksumAlgorithm::Crc32c => f.crc32c = v,
            ChecksumAlgorithm::Crc64Nvme => f.crc64nvme = v,
            ChecksumAlgorithm::Sha1 => f.sha1 = v,
            ChecksumAlgorithm::Sha256 => f.sha256 = v,
        }
        f.kind = Some(wire_kind(c.kind));
        f
    }
}

/// The checksum values a request carries in `x-amz-checksum-*` headers.
pub(crate) fn header_checksums(
    crc32: Option<&String>,
    crc32c: Option<&String>,
    crc64nvme: Option<&String>,
    sha1: Option<&String>,
    sha256: Option<&String>,
) -> Vec<(ChecksumAlgorithm, String)> {
    [
        (ChecksumAlgorithm::Crc32, crc32),
        (ChecksumAlgorithm::Crc32c, crc32c),
        (ChecksumAlgorithm::Crc64Nvme, crc64nvme),
        (ChecksumAlgorithm::Sha1, sha1),
        (ChecksumAlgorithm::Sha256, sha256),
    ]
    .into_iter()
    .filter_map(|(a, v)| v.map(|v| (a, v.clone())))
    .collect()
}

/// The algorithm an upload should be hashed with: the one named by a checksum header, the
/// SDK's algorithm header, or the trailer it announces; else `default`.
pub(crate) fn choose_algorithm(
    sent: &[(ChecksumAlgorithm, String)],
    sdk_algorithm: Option<&dto::ChecksumAlgorithm>,
    headers: &HeaderMap,
    default: Option<ChecksumAlgorithm>,
) -> S3Result<Option<ChecksumAlgorithm>> {
    if sent.len() > 1 {
        return Err(s3_error!(
            InvalidRequest,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        ));
    }
    if let Some((a, _)) = sent.first() {
        return Ok(Some(*a));
    }
    if let Some(t) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        let name = t.trim().to_ascii_lowercase();
        if let Some(a) = name.strip_prefix("x-amz-checksum-").and_then(ChecksumAlgorithm::parse) {
            return Ok(Some(a));
        }
    }
    if let Some(a) = sdk_algorithm {
        return ChecksumAlgorithm::parse(a.as_str())
            .map(Some)
            .ok_or_else(|| s3_error!(InvalidRequest, "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]"));
    }
    Ok(default)
}

/// Verify the staged body against the checksum headers and trailers the client sent.
pub(crate) fn verify_checksums(
    staged: &quarry_storage::StagedData,
    sent: &[(ChecksumAlgorithm, String)],
    trailers: Option<&s3s::TrailingHeaders>,
) -> S3Result<()> {
    let computed = staged.checksum();
    let mut expected: Vec<(ChecksumAlgorithm, String)> = sent.to_vec();
    if let Some(t) = trailers.and_then(s3s::TrailingHeaders::take) {
        for (name, value) in &t {
            if let Some(a) = name.as_str().strip_prefix("x-amz-checksum-").and_then(ChecksumAlgorithm::parse) {
                let v = value
                    .to_str()
                    .map_err(|_| s3_error!(InvalidRequest, "Value for x-amz-checksum header is invalid."))?;
                expected.push((a, v.to_owned()));
            }
        }
    }
    for (a, v) in expected {
        match computed {
            Some(c) if c.algorithm == a => c.verify(&v).s3()?,
            _ => {
                return Err(s3_error!(
                    InvalidRequest,
                    "The checksum {} was sent but not computed for this request",
                    a.as_str()
                ));
            }
        }
    }
    Ok(())
}

fn etag_matches(cond: &ETagCondition, meta: &ObjectMeta) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == meta.etag,
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn ts_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

/// Outcome of evaluating read preconditions.
pub(crate) enum ReadCondition {
    Proceed,
    NotModified,
    Failed,
}

/// Evaluate If-Match / If-Unmodified-Since / If-None-Match / If-Modified-Since with S3's
/// precedence: a true If-Match overrides a false If-Unmodified-Since, and a false
/// If-None-Match (the ETag matches) means 304 whatever If-Modified-Since says.
pub(crate) fn read_condition(
    meta: &ObjectMeta,
    if_match: Option<&ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
) -> ReadCondition {
    let modified = i64::try_from(secs(meta.last_modified)).unwrap_or(i64::MAX);
    match if_match {
        Some(c) if !etag_matches(c, meta) => return ReadCondition::Failed,
        Some(_) => {}
        None => {
            if let Some(t) = if_unmodified_since
                && modified > ts_secs(t)
            {
                return ReadCondition::Failed;
            }
        }
    }
    match if_none_match {
        Some(c) if etag_matches(c, meta) => return ReadCondition::NotModified,
        Some(_) => {}
        None => {
            if let Some(t) = if_modified_since
                && modified <= ts_secs(t)
            {
                return ReadCondition::NotModified;
            }
        }
    }
    ReadCondition::Proceed
}

/// Percent-encode a key for `encoding-type=url` listings (unreserved characters and `/` stay).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An account as S3 names an owner: canonical id and display name.
pub(crate) fn owner(a: &crate::iam::identity::AccountView) -> dto::Owner {
    dto::Owner {
        display_name: Some(a.display_name.clone()),
        id: Some(a.canonical_id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slashes() {
        assert_eq!(url_encode("a b/ü+%"), "a%20b/%C3%BC%2B%25");
    }

    #[test]
    fn aws_chunked_is_not_stored() {
        assert_eq!(content_encoding(Some("aws-chunked".into())), None);
        assert_eq!(content_encoding(Some("gzip, aws-chunked".into())).as_deref(), Some("gzip"));
        assert_eq!(content_encoding(Some("gzip".into())).as_deref(), Some("gzip"));
    }
}
