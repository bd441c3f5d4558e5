//! CopyObject and UploadPartCopy: server-side copies that stream the source through the
//! same staging path as an upload, so a copy is checked and committed like any write.

use super::Quarry;
use super::convert::{self, ChecksumFields, ReadCondition};
use super::error::StorageResultExt;
use super::object::DEFAULT_ALGORITHM;
use quarry_storage::{BucketName, ChecksumAlgorithm, ObjectKey, ObjectReader, PartNumber, ReadRange, VersionId};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

/// Largest source CopyObject copies in one request, as in S3.
const MAX_COPY_SIZE: u64 = 5 * 1024 * 1024 * 1024;

struct SourceConditions<'a> {
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
    if_modified_since: Option<&'a Timestamp>,
    if_unmodified_since: Option<&'a Timestamp>,
}

fn source(cs: &CopySource) -> S3Result<(BucketName, ObjectKey, Option<VersionId>)> {
    match cs {
        CopySource::Bucket { bucket, key, version_id } => {
            let v = convert::version(version_id.as_deref())?;
            Ok((convert::bucket(bucket)?, convert::key(key)?, v))
        }
        CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => {
            Err(s3_error!(NotImplemented, "Copying from access points is not supported"))
        }
    }
}

async fn open_source(
    q: &Quarry,
    b: &BucketName,
    k: &ObjectKey,
    v: Option<&VersionId>,
    range: ReadRange,
    c: &SourceConditions<'_>,
) -> S3Result<ObjectReader> {
    // A delete marker as the copy source is refused as S3 does (400 InvalidRequest when
    // named by version, 404 NoSuchKey when it is the current version).
    let reader = match q.store.get_object(b, k, v, range).await {
        Err(quarry_storage::Error::DeleteMarker { requested: true, .. }) => {
            return Err(s3_error!(
                InvalidRequest,
                "The source of a copy request may not specifically refer to a delete marker by version id."
            ));
        }
        r => r.s3()?,
    };
    // For copies every failed condition is a 412 (there is no 304 for a copy).
    match convert::read_condition(
        &reader.meta,
        c.if_match,
        c.if_unmodified_since,
        c.if_none_match,
        c.if_modified_since,
    ) {
        ReadCondition::Proceed => Ok(reader),
        ReadCondition::NotModified | ReadCondition::Failed => Err(s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        )),
    }
}

pub(super) async fn copy_object(q: &Quarry, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
    let caller = super::caller(&req);
    let input = req.input;
    let dst_bucket = convert::bucket(&input.bucket)?;
    let dst_key = convert::key(&input.key)?;
    let (src_bucket, src_key, src_version) = source(&input.copy_source)?;
    super::refuse::refuse_write_encryption!(input)?;
    super::refuse::refuse_copy_source_key!(input)?;
    super::refuse::refuse_object_lock!(input)?;
    let (owner, acl) = super::acl::object_write_acl(q, &dst_bucket, caller.as_deref(), &super::acl::acl_asked!(input, None, None))?;
    q.store.head_bucket(&dst_bucket).s3()?;
    let conds = SourceConditions {
        if_match: input.copy_source_if_match.as_ref(),
        if_none_match: input.copy_source_if_none_match.as_ref(),
        if_modified_since: input.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
    };
    let reader = open_source(q, &src_bucket, &src_key, src_version.as_ref(), ReadRange::All, &conds).await?;
    let src = reader.meta.clone();
    if src.size > MAX_COPY_SIZE {
        return Err(s3_error!(
            InvalidRequest,
            "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_SIZE}"
        ));
    }
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    if let Some(d) = &input.metadata_directive
        && !matches!(d.as_str(), MetadataDirective::REPLACE | MetadataDirective::COPY)
    {
        return Err(s3_error!(InvalidArgument, "Unknown metadata directive."));
    }
    let attrs = if replace {
        convert::attrs_of!(input)?
    } else {
        let mut a = src.attrs.clone();
        if input.storage_class.is_some() {
            a.storage_class = convert::storage_class(input.storage_class.as_ref())?;
        }
        if input.website_redirect_location.is_some() {
            a.website_redirect_location = input.website_redirect_location;
        }
        a
    };
    let mut attrs = attrs;
    // The copy is a new object of its writer's, with the ACL the copy asked for.
    (attrs.owner, attrs.acl) = (owner, acl);
    match input.tagging_directive.as_ref().map(TaggingDirective::as_str) {
        None | Some(TaggingDirective::COPY) => attrs.tags = src.attrs.tags.clone(),
        Some(TaggingDirective::REPLACE) => attrs.tags = super::tagging::parse_header(input.tagging.as_deref())?,
        Some(_) => return Err(s3_error!(InvalidArgument, "Unknown tagging directive.")),
    }
    // Copying an older version onto its own key restores it; that is a change.
    let same = src_bucket == dst_bucket
        && src_key == dst_key
        && src_version.as_ref().is_none_or(|v| {
            v.as_option() == src.version_id.as_deref()
                && q.store
                    .head_object(&src_bucket, &src_key, None)
                    .is_ok_and(|cur| cur.version_id == src.version_id)
        });
    let changes = replace
        || input.storage_class.is_some()
        || input.checksum_algorithm.is_some()
        || attrs.website_redirect_location != src.attrs.website_redirect_location;
    if same && !changes {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    let algorithm = match &input.checksum_algorithm {
        Some(a) => Some(
            ChecksumAlgorithm::parse(a.as_str()).ok_or_else(|| s3_error!(InvalidRequest, "Checksum algorithm provided is unsupported."))?,
        ),
        None => Some(
            src.checksum
                .as_ref()
                .filter(|c| c.kind == quarry_storage::ChecksumType::FullObject)
                .map_or(DEFAULT_ALGORITHM, |c| c.algorithm),
        ),
    };
    let staged = q.store.stage(&dst_bucket, reader.body, algorithm, Some(src.size)).await.s3()?;
    let meta = q
        .store
        .commit_object(&dst_bucket, &dst_key, staged, attrs, &Default::default())
        .await
        .s3()?;
    let c = ChecksumFields::from(meta.checksum.as_ref());
    Ok(S3Response::new(CopyObjectOutput {
        version_id: convert::written_version(&meta),
        copy_source_version_id: convert::version_header(&q.store, &src_bucket, &src),
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(convert::etag(&meta)),
            last_modified: Some(convert::ts(meta.last_modified)),
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            checksum_type: c.kind,
        }),
        ..Default::default()
    }))
}

/// Parse `bytes=first-last` of x-amz-copy-source-range (both ends required, as in S3).
fn copy_range(s: &str) -> S3Result<ReadRange> {
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let r = s.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = r.split_once('-').ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok(ReadRange::From { first, last: Some(last) })
}

pub(super) async fn upload_part_copy(q: &Quarry, req: S3Request<UploadPartCopyInput>) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    super::refuse::refuse_customer_key!(input)?;
    super::refuse::refuse_copy_source_key!(input)?;
    let number = PartNumber::new(i64::from(input.part_number)).s3()?;
    let info = q.store.upload_info(&bucket, &key, &input.upload_id).await.s3()?;
    let (src_bucket, src_key, src_version) = source(&input.copy_source)?;
    let range = match &input.copy_source_range {
        Some(r) => copy_range(r)?,
        None => ReadRange::All,
    };
    let conds = SourceConditions {
        if_match: input.copy_source_if_match.as_ref(),
        if_none_match: input.copy_source_if_none_match.as_ref(),
        if_modified_since: input.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
    };
    let reader = open_source(q, &src_bucket, &src_key, src_version.as_ref(), range, &conds).await?;
    if let ReadRange::From { last: Some(last), .. } = range
        && last >= reader.meta.size
    {
        return Err(s3_error!(InvalidRange, "The requested range is not satisfiable"));
    }
    let len = reader.range.end - reader.range.start;
    let algorithm = Some(info.checksum.map_or(DEFAULT_ALGORITHM, |(a, _)| a));
    let staged = q.store.stage(&bucket, reader.body, algorithm, Some(len)).await.s3()?;
    let rec = q.store.commit_part(&bucket, &key, &input.upload_id, number, staged).await.s3()?;
    let c = ChecksumFields::from(rec.part.checksum.as_ref());
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_source_version_id: convert::version_header(&q.store, &src_bucket, &reader.meta),
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(rec.part.etag.clone())),
            last_modified: Some(convert::ts(rec.last_modified)),
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
        }),
        ..Default::default()
    }))
}
