//! PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects.

use super::Quarry;
use super::convert::{self, ChecksumFields, ReadCondition};
use super::error::StorageResultExt;
use quarry_storage::{ChecksumAlgorithm, DeleteCondition, ObjectMeta, ReadRange, WriteCondition};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use std::sync::Arc;

/// Every upload gets a checksum: CRC64NVME when the client names none, as AWS does.
pub(crate) const DEFAULT_ALGORITHM: ChecksumAlgorithm = ChecksumAlgorithm::Crc64Nvme;

/// The Content-MD5 the request sent: s3s reads an empty header as absent, but an empty
/// digest is a malformed one (400 InvalidDigest on AWS), not a request without one.
pub(crate) fn content_md5<'a>(headers: &http::HeaderMap, parsed: Option<&'a str>) -> Option<&'a str> {
    parsed.or_else(|| headers.contains_key("content-md5").then_some(""))
}

/// The declared body length of a plain (not aws-chunked) upload, which the store enforces.
pub(crate) fn declared_len(headers: &http::HeaderMap, content_length: Option<i64>) -> S3Result<Option<u64>> {
    if let Some(v) = headers.get("x-amz-decoded-content-length") {
        let n = v.to_str().ok().and_then(|s| s.parse::<u64>().ok());
        return n
            .map(Some)
            .ok_or_else(|| s3_error!(InvalidArgument, "x-amz-decoded-content-length is not a number"));
    }
    let chunked = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"));
    if chunked {
        return Ok(None);
    }
    match content_length {
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "Content-Length must not be negative")),
        Some(n) => Ok(Some(n as u64)),
        None => Ok(None),
    }
}

/// What an upload's body must be checked against.
pub(crate) struct Upload<'a> {
    pub algorithm: Option<ChecksumAlgorithm>,
    pub declared: Option<u64>,
    pub content_md5: Option<&'a str>,
    pub sent: &'a [(ChecksumAlgorithm, String)],
    pub trailers: Option<&'a s3s::TrailingHeaders>,
}

/// Stage an upload body (PutObject, UploadPart), then check it against `Content-MD5` and
/// the checksums sent in headers or trailers; a failed check drops the staged data.
pub(crate) async fn stage_checked(
    q: &Quarry,
    bucket: &quarry_storage::BucketName,
    body: Option<StreamingBlob>,
    u: Upload<'_>,
) -> S3Result<quarry_storage::StagedData> {
    let staged = match body {
        Some(body) => q.store.stage(bucket, body, u.algorithm, u.declared).await,
        None => {
            q.store
                .stage(
                    bucket,
                    futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>(),
                    u.algorithm,
                    u.declared,
                )
                .await
        }
    }
    .s3()?;
    if let Some(md5) = u.content_md5 {
        staged.verify_content_md5(md5).s3()?;
    }
    convert::verify_checksums(&staged, u.sent, u.trailers)?;
    Ok(staged)
}

pub(crate) fn write_condition(if_match: Option<&ETagCondition>, if_none_match: Option<&ETagCondition>) -> S3Result<WriteCondition> {
    let value = |c: &ETagCondition| match c {
        ETagCondition::Any => "*".to_owned(),
        ETagCondition::ETag(e) => e.value().to_owned(),
    };
    Ok(WriteCondition {
        if_match: if_match.map(value),
        if_none_match: if_none_match.map(value),
    })
}

pub(super) async fn put_object(q: &Quarry, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    let declared = declared_len(&req.headers, req.input.content_length)?;
    let trailers = req.trailing_headers.clone();
    let caller = super::caller(&req);
    let headers = req.headers;
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    super::refuse::refuse_write_encryption!(input)?;
    super::refuse::refuse_object_lock!(input)?;
    let (owner, acl) = super::acl::object_write_acl(q, &bucket, caller.as_deref(), &super::acl::acl_asked!(input, None, None))?;
    if input.write_offset_bytes.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "Appending with x-amz-write-offset-bytes is not supported"
        ));
    }
    let tags = super::tagging::parse_header(input.tagging.as_deref())?;
    let mut attrs = convert::attrs_of!(input)?;
    attrs.tags = tags;
    (attrs.owner, attrs.acl) = (owner, acl);
    let cond = write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let sent = convert::header_checksums(
        input.checksum_crc32.as_ref(),
        input.checksum_crc32c.as_ref(),
        input.checksum_crc64nvme.as_ref(),
        input.checksum_sha1.as_ref(),
        input.checksum_sha256.as_ref(),
    );
    let algorithm = convert::choose_algorithm(&sent, input.checksum_algorithm.as_ref(), &headers, Some(DEFAULT_ALGORITHM))?;
    q.store.head_bucket(&bucket).s3()?;
    let upload = Upload {
        algorithm,
        declared,
        content_md5: content_md5(&headers, input.content_md5.as_deref()),
        sent: &sent,
        trailers: trailers.as_ref(),
    };
    let staged = stage_checked(q, &bucket, input.body, upload).await?;
    let meta = q.store.commit_object(&bucket, &key, staged, attrs, &cond).await.s3()?;
    let c = ChecksumFields::from(meta.checksum.as_ref());
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(convert::etag(&meta)),
        version_id: convert::written_version(&meta),
        checksum_crc32: c.crc32,
        checksum_crc32c: c.crc32c,
        checksum_crc64nvme: c.crc64nvme,
        checksum_sha1: c.sha1,
        checksum_sha256: c.sha256,
        checksum_type: c.kind,
        ..Default::default()
    }))
}

fn read_range(range: Option<&Range>, part_number: Option<i32>) -> S3Result<ReadRange> {
    match (range, part_number) {
        (Some(_), Some(_)) => Err(s3_error!(
            InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter"
        )),
        (None, Some(n)) if n < 1 => Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        )),
        (None, Some(n)) => Ok(ReadRange::Part(n as u32)),
        (Some(Range::Int { first, last }), None) => Ok(ReadRange::From {
            first: *first,
            last: *last,
        }),
        (Some(Range::Suffix { length }), None) => Ok(ReadRange::Suffix(*length)),
        (None, None) => Ok(ReadRange::All),
    }
}

fn condition_error(c: ReadCondition, meta: &ObjectMeta) -> S3Result<()> {
    match c {
        ReadCondition::Proceed => Ok(()),
        ReadCondition::Failed => Err(s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        )),
        ReadCondition::NotModified => {
            let mut err = s3_error!(NotModified);
            let mut h = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", meta.etag)) {
                h.insert(http::header::ETAG, v);
            }
            err.set_headers(h);
            Err(err)
        }
    }
}

/// Headers GET and HEAD share.
struct Common {
    content_length: i64,
    content_range: Option<String>,
    checksum: ChecksumFields,
    parts_count: Option<i32>,
}

fn common(
    meta: &ObjectMeta,
    range: &std::ops::Range<u64>,
    partial: bool,
    part: Option<i32>,
    checksum_mode: Option<&ChecksumMode>,
) -> Common {
    let part_asked = part.is_some();
    let want_checksum = checksum_mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED);
    // A checksum describes the whole object (or, for part 1 of a single-part object, the same bytes).
    let whole = !partial || (part_asked && meta.parts.len() == 1);
    // A part of a multipart object has its own checksum, reported with the object's
    // checksum type, as AWS reports it.
    let composite_part = part
        .and_then(|n| usize::try_from(n).ok()?.checked_sub(1))
        .and_then(|i| meta.parts.get(i))
        .and_then(|p| p.checksum.as_ref())
        .zip(meta.checksum.as_ref())
        .filter(|(p, o)| p.algorithm == o.algorithm)
        .map(|(p, o)| quarry_storage::Checksum { kind: o.kind, ..p.clone() });
    Common {
        content_length: (range.end - range.start) as i64,
        content_range: partial.then(|| format!("bytes {}-{}/{}", range.start, range.end.saturating_sub(1), meta.size)),
        checksum: match &composite_part {
            Some(c) if want_checksum && meta.parts.len() > 1 => ChecksumFields::from(Some(c)),
            _ if want_checksum && whole => ChecksumFields::from(meta.checksum.as_ref()),
            _ => ChecksumFields::default(),
        },
        parts_count: (meta.multipart || part_asked).then_some(meta.parts.len() as i32),
    }
}

fn or<T>(over: Option<T>, stored: Option<T>) -> Option<T> {
    over.or(stored)
}

/// The headers GetObject and HeadObject share, with `response-*` overrides applied, plus
/// the given extra fields.
macro_rules! object_headers {
    ($ty:ident, $meta:ident, $c:ident, $input:ident, { $($extra:tt)* }) => {{
        let a = &$meta.attrs;
        $ty {
            $($extra)*
            accept_ranges: Some("bytes".into()),
            content_length: Some($c.content_length),
            content_range: $c.content_range,
            e_tag: Some(convert::etag(&$meta)),
            last_modified: Some(convert::ts($meta.last_modified)),
            metadata: convert::user_metadata(a),
            content_type: or($input.response_content_type, a.content_type.clone()).or_else(|| Some("binary/octet-stream".into())),
            content_encoding: or($input.response_content_encoding, a.content_encoding.clone()),
            content_disposition: or($input.response_content_disposition, a.content_disposition.clone()),
            content_language: or($input.response_content_language, a.content_language.clone()),
            cache_control: or($input.response_cache_control, a.cache_control.clone()),
            expires: or($input.response_expires, convert::expires(a)),
            website_redirect_location: a.website_redirect_location.clone(),
            storage_class: a.storage_class.clone().map(StorageClass::from),
            checksum_crc32: $c.checksum.crc32,
            checksum_crc32c: $c.checksum.crc32c,
            checksum_crc64nvme: $c.checksum.crc64nvme,
            checksum_sha1: $c.checksum.sha1,
            checksum_sha256: $c.checksum.sha256,
            checksum_type: $c.checksum.kind,
            parts_count: $c.parts_count,
            ..Default::default()
        }
    }};
}

pub(super) async fn get_object(q: &Quarry, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    let input = req.input;
    super::refuse::refuse_customer_key!(input)?;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let version = convert::version(input.version_id.as_deref())?;
    let range = read_range(input.range.as_ref(), input.part_number)?;
    let head = q.store.head_object(&bucket, &key, version.as_ref()).s3()?;
    // Preconditions are judged before the range, as S3 does (a 304 beats a 416).
    condition_error(
        convert::read_condition(
            &head,
            input.if_match.as_ref(),
            input.if_unmodified_since.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
        ),
        &head,
    )?;
    let reader = q.store.get_object(&bucket, &key, version.as_ref(), range).await.s3()?;
    let meta: Arc<ObjectMeta> = reader.meta.clone();
    let c = common(
        &meta,
        &reader.range,
        reader.partial,
        input.part_number,
        input.checksum_mode.as_ref(),
    );
    Ok(S3Response::new(object_headers!(GetObjectOutput, meta, c, input, {
        body: Some(StreamingBlob::wrap(reader.body)),
        version_id: convert::version_header(&q.store, &bucket, &meta),
        tag_count: (!meta.attrs.tags.is_empty()).then_some(meta.attrs.tags.len() as i32),
    })))
}

pub(super) async fn head_object(q: &Quarry, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = req.input;
    super::refuse::refuse_customer_key!(input)?;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let version = convert::version(input.version_id.as_deref())?;
    let range = read_range(input.range.as_ref(), input.part_number)?;
    let meta = q.store.head_object(&bucket, &key, version.as_ref()).s3()?;
    condition_error(
        convert::read_condition(
            &meta,
            input.if_match.as_ref(),
            input.if_unmodified_since.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
        ),
        &meta,
    )?;
    let (r, partial) = meta.resolve(range).s3()?;
    let c = common(&meta, &r, partial, input.part_number, input.checksum_mode.as_ref());
    Ok(S3Response::new(object_headers!(HeadObjectOutput, meta, c, input, {
        version_id: convert::version_header(&q.store, &bucket, &meta),
    })))
}

pub(super) async fn delete_object(q: &Quarry, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let version = convert::version(input.version_id.as_deref())?;
    let cond = delete_condition(
        input.if_match.as_ref(),
        input.if_match_size,
        input.if_match_last_modified_time.as_ref(),
    )?;
    let out = q.store.delete_object_if(&bucket, &key, version.as_ref(), &cond).await.s3()?;
    Ok(S3Response::with_status(
        DeleteObjectOutput {
            delete_marker: out.delete_marker.then_some(true),
            version_id: out.version_id,
            ..Default::default()
        },
        http::StatusCode::NO_CONTENT,
    ))
}

/// The conditions of a delete (DeleteObject's headers, or a DeleteObjects entry's ETag,
/// LastModifiedTime and Size), judged by the store under the key's lock.
fn delete_condition(if_match: Option<&ETagCondition>, size: Option<i64>, modified: Option<&Timestamp>) -> S3Result<DeleteCondition> {
    let size = match size {
        Some(n) => Some(u64::try_from(n).map_err(|_| s3_error!(InvalidArgument, "x-amz-if-match-size must not be negative"))?),
        None => None,
    };
    Ok(DeleteCondition {
        if_match: if_match.map(|c| match c {
            ETagCondition::Any => "*".to_owned(),
            ETagCondition::ETag(e) => e.value().to_owned(),
        }),
        size,
        // The header has second precision, as Last-Modified does.
        last_modified_secs: modified.map(|t| time::OffsetDateTime::from(t.clone()).unix_timestamp()),
    })
}

pub(super) async fn delete_objects(q: &Quarry, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let gate = req.extensions.get::<crate::auth::KeyGate>().cloned();
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    q.store.head_bucket(&bucket).s3()?;
    let objects = input.delete.objects;
    if objects.len() > 1000 {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for o in objects {
        let result = match (convert::key(&o.key), convert::version(o.version_id.as_deref())) {
            _ if gate.as_ref().is_some_and(|g| !g.allows(&o.key, o.version_id.is_some())) => Err(s3_error!(AccessDenied, "Access Denied")),
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(k), Ok(v)) => match delete_condition(
                o.e_tag.as_ref().map(|e| ETagCondition::ETag(e.clone())).as_ref(),
                o.size,
                o.last_modified_time.as_ref(),
            ) {
                Ok(cond) => q.store.delete_object_if(&bucket, &k, v.as_ref(), &cond).await.s3(),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(out) => {
                if !quiet {
                    // A marker created (no version named) is reported as the marker's id.
                    let marker_created = out.delete_marker && o.version_id.is_none();
                    deleted.push(DeletedObject {
                        key: Some(o.key),
                        version_id: o.version_id,
                        delete_marker: out.delete_marker.then_some(true),
                        delete_marker_version_id: if marker_created { out.version_id } else { None },
                    });
                }
            }
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_owned()),
                key: Some(o.key),
                message: e.message().map(str::to_owned),
                version_id: o.version_id,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: (!deleted.is_empty()).then_some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    }))
}

/// GetObjectAttributes: the attributes named in `x-amz-object-attributes`, without the body.
pub(super) async fn get_object_attributes(
    q: &Quarry,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let input = req.input;
    super::refuse::refuse_customer_key!(input)?;
    let version = convert::version(input.version_id.as_deref())?;
    let bucket = convert::bucket(&input.bucket)?;
    let meta = q.store.head_object(&bucket, &convert::key(&input.key)?, version.as_ref()).s3()?;
    // The header is a comma-separated list, which may arrive as one element.
    let want = |name: &str| {
        input
            .object_attributes
            .iter()
            .flat_map(|a| a.as_str().split(','))
            .any(|a| a.trim().eq_ignore_ascii_case(name))
    };
    let mut out = GetObjectAttributesOutput {
        last_modified: Some(convert::ts(meta.last_modified)),
        version_id: convert::version_header(&q.store, &bucket, &meta),
        ..Default::default()
    };
    if want(ObjectAttributes::ETAG) {
        out.e_tag = Some(convert::etag(&meta));
    }
    if want(ObjectAttributes::OBJECT_SIZE) {
        out.object_size = Some(meta.size as i64);
    }
    if want(ObjectAttributes::STORAGE_CLASS) {
        out.storage_class = Some(StorageClass::from(
            meta.attrs.storage_class.clone().unwrap_or_else(|| "STANDARD".into()),
        ));
    }
    if want(ObjectAttributes::CHECKSUM)
        && let Some(c) = meta.checksum.as_ref()
    {
        let f = ChecksumFields::from(Some(c));
        out.checksum = Some(Checksum {
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            checksum_type: f.kind,
        });
    }
    if want(ObjectAttributes::OBJECT_PARTS) && meta.multipart {
        let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
        let max = input.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let after: Vec<_> = meta.parts.iter().filter(|p| p.number > marker).collect();
        let page: Vec<ObjectPart> = after
            .iter()
            .take(max)
            .map(|p| {
                let f = ChecksumFields::from(p.checksum.as_ref());
                ObjectPart {
                    part_number: Some(p.number as i32),
                    size: Some(p.size as i64),
                    checksum_crc32: f.crc32,
                    checksum_crc32c: f.crc32c,
                    checksum_crc64nvme: f.crc64nvme,
                    checksum_sha1: f.sha1,
                    checksum_sha256: f.sha256,
                }
            })
            .collect();
        let truncated = after.len() > max;
        out.object_parts = Some(GetObjectAttributesParts {
            total_parts_count: Some(meta.parts.len() as i32),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: if truncated { page.last().and_then(|p| p.part_number) } else { None },
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(page),
        });
    }
    Ok(S3Response::new(out))
}
