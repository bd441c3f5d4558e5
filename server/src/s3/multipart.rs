//! CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload,
//! AbortMultipartUpload, ListMultipartUploads.

use super::Quarry;
use super::convert::{self, ChecksumFields};
use super::error::StorageResultExt;
use super::object::{DEFAULT_ALGORITHM, Upload, declared_len, stage_checked, write_condition};
use quarry_storage::{ChecksumAlgorithm, ChecksumType as Kind, CompletedPart as Done, PartNumber};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

pub(super) async fn create(q: &Quarry, req: S3Request<CreateMultipartUploadInput>) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let caller = super::caller(&req);
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    super::refuse::refuse_write_encryption!(input)?;
    super::refuse::refuse_object_lock!(input)?;
    let (owner, acl) = super::acl::object_write_acl(q, &bucket, caller.as_deref(), &super::acl::acl_asked!(input, None, None))?;
    let tags = super::tagging::parse_header(input.tagging.as_deref())?;
    let mut attrs = convert::attrs_of!(input)?;
    attrs.tags = tags;
    (attrs.owner, attrs.acl) = (owner, acl);
    let algorithm = match &input.checksum_algorithm {
        Some(a) => Some(
            ChecksumAlgorithm::parse(a.as_str()).ok_or_else(|| s3_error!(InvalidRequest, "Checksum algorithm provided is unsupported."))?,
        ),
        None => None,
    };
    let kind = match input.checksum_type.as_ref().map(ChecksumType::as_str) {
        Some(ChecksumType::FULL_OBJECT) => Some(Kind::FullObject),
        Some(ChecksumType::COMPOSITE) => Some(Kind::Composite),
        Some(_) => return Err(s3_error!(InvalidRequest, "The checksum type is not valid.")),
        None => None,
    };
    let checksum = match (algorithm, kind) {
        (Some(a), Some(k)) => {
            if k == Kind::FullObject && !a.is_crc() || k == Kind::Composite && a == ChecksumAlgorithm::Crc64Nvme {
                return Err(s3_error!(
                    InvalidRequest,
                    "The {} checksum type cannot be used with the {} checksum algorithm.",
                    k.as_str(),
                    a.as_str()
                ));
            }
            Some((a, k))
        }
        (Some(ChecksumAlgorithm::Crc64Nvme), None) => Some((ChecksumAlgorithm::Crc64Nvme, Kind::FullObject)),
        (Some(a), None) => Some((a, Kind::Composite)),
        (None, Some(_)) => {
            return Err(s3_error!(
                InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
            ));
        }
        (None, None) => None,
    };
    let info = q.store.create_upload(&bucket, &key, attrs, checksum).await.s3()?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(info.upload_id),
        checksum_algorithm: checksum.map(|(a, _)| convert::wire_algorithm(a)),
        checksum_type: checksum.map(|(_, k)| convert::wire_kind(k)),
        ..Default::default()
    }))
}

pub(super) async fn upload_part(q: &Quarry, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
    let declared = declared_len(&req.headers, req.input.content_length)?;
    let trailers = req.trailing_headers.clone();
    let headers = req.headers;
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    super::refuse::refuse_customer_key!(input)?;
    let number = PartNumber::new(i64::from(input.part_number)).s3()?;
    let info = q.store.upload_info(&bucket, &key, &input.upload_id).await.s3()?;
    let sent = convert::header_checksums(
        input.checksum_crc32.as_ref(),
        input.checksum_crc32c.as_ref(),
        input.checksum_crc64nvme.as_ref(),
        input.checksum_sha1.as_ref(),
        input.checksum_sha256.as_ref(),
    );
    let upload_algorithm = info.checksum.map(|(a, _)| a);
    let algorithm = convert::choose_algorithm(
        &sent,
        input.checksum_algorithm.as_ref(),
        &headers,
        Some(upload_algorithm.unwrap_or(DEFAULT_ALGORITHM)),
    )?;
    if let (Some(want), Some(got)) = (upload_algorithm, algorithm)
        && want != got
    {
        return Err(s3_error!(
            InvalidRequest,
            "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
            want.as_str().to_ascii_lowercase(),
            got.as_str().to_ascii_lowercase()
        ));
    }
    let upload = Upload {
        algorithm,
        declared,
        content_md5: super::object::content_md5(&headers, input.content_md5.as_deref()),
        sent: &sent,
        trailers: trailers.as_ref(),
    };
    let staged = stage_checked(q, &bucket, input.body, upload).await?;
    let rec = q.store.commit_part(&bucket, &key, &input.upload_id, number, staged).await.s3()?;
    let c = ChecksumFields::from(rec.part.checksum.as_ref());
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(ETag::Strong(rec.part.etag.clone())),
        checksum_crc32: c.crc32,
        checksum_crc32c: c.crc32c,
        checksum_crc64nvme: c.crc64nvme,
        checksum_sha1: c.sha1,
        checksum_sha256: c.sha256,
        ..Default::default()
    }))
}

pub(super) async fn list_parts(q: &Quarry, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
    let input = req.input;
    super::refuse::refuse_customer_key!(input)?;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let (info, parts) = q.store.list_parts(&bucket, &key, &input.upload_id).await.s3()?;
    let owner = super::list::Owners::new(q, &bucket)?.of(info.attrs.owner.as_deref());
    let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
    let max = match input.max_parts {
        Some(n) if n < 0 => return Err(s3_error!(InvalidArgument, "max-parts cannot be negative")),
        Some(n) => n.min(1000) as usize,
        None => 1000,
    };
    let after: Vec<_> = parts.into_iter().filter(|p| p.part.number > marker).collect();
    let truncated = after.len() > max;
    let page: Vec<_> = after.into_iter().take(max).collect();
    let next = if truncated {
        page.last().map(|p| p.part.number as i32)
    } else {
        None
    };
    let out: Vec<Part> = page
        .iter()
        .map(|p| {
            let c = ChecksumFields::from(p.part.checksum.as_ref());
            Part {
                part_number: Some(p.part.number as i32),
                e_tag: Some(ETag::Strong(p.part.etag.clone())),
                size: Some(p.part.size as i64),
                last_modified: Some(convert::ts(p.last_modified)),
                checksum_crc32: c.crc32,
                checksum_crc32c: c.crc32c,
                checksum_crc64nvme: c.crc64nvme,
                checksum_sha1: c.sha1,
                checksum_sha256: c.sha256,
            }
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: next,
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        parts: Some(out),
        owner: Some(owner.clone()),
        initiator: Some(Initiator {
            display_name: owner.display_name,
            id: owner.id,
        }),
        storage_class: Some(StorageClass::from(
            info.attrs.storage_class.clone().unwrap_or_else(|| "STANDARD".into()),
        )),
        checksum_algorithm: info.checksum.map(|(a, _)| convert::wire_algorithm(a)),
        checksum_type: info.checksum.map(|(_, k)| convert::wire_kind(k)),
        ..Default::default()
    }))
}

pub(super) async fn complete(
    q: &Quarry,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let input = req.input;
    super::refuse::refuse_customer_key!(input)?;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let cond = write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let info = match q.store.upload_info(&bucket, &key, &input.upload_id).await {
        Ok(info) => info,
        Err(quarry_storage::Error::NoSuchUpload(u)) => {
            // A retried completion (its answer lost on the way) finds the object the
            // first one made, and answers as it did.
            return match q.store.head_object(&bucket, &key, None) {
                Ok(meta) if meta.upload_id.as_deref() == Some(input.upload_id.as_str()) => Ok(completed(&input.bucket, &input.key, &meta)),
                _ => Err(quarry_storage::Error::NoSuchUpload(u)).s3(),
            };
        }
        Err(e) => return Err(e).s3(),
    };
    let algorithm = info.checksum.map(|(a, _)| a);
    let listed = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    if listed.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    let mut parts = Vec::with_capacity(listed.len());
    for p in listed {
        let number = p
            .part_number
            .ok_or_else(|| s3_error!(InvalidPart, "A part is missing its PartNumber"))?;
        let etag = p
            .e_tag
            .map(ETag::into_value)
            .ok_or_else(|| s3_error!(InvalidPart, "Part {number} is missing its ETag"))?;
        let checksum = match algorithm {
            Some(ChecksumAlgorithm::Crc32) => p.checksum_crc32,
            Some(ChecksumAlgorithm::Crc32c) => p.checksum_crc32c,
            Some(ChecksumAlgorithm::Crc64Nvme) => p.checksum_crc64nvme,
            Some(ChecksumAlgorithm::Sha1) => p.checksum_sha1,
            Some(ChecksumAlgorithm::Sha256) => p.checksum_sha256,
            None => None,
        };
        parts.push(Done {
            number: i64::from(number),
            etag,
            checksum,
        });
    }
    let sent = convert::header_checksums(
        input.checksum_crc32.as_ref(),
        input.checksum_crc32c.as_ref(),
        input.checksum_crc64nvme.as_ref(),
        input.checksum_sha1.as_ref(),
        input.checksum_sha256.as_ref(),
    );
    // The whole object's checksum, when the client sent one, is checked before the object
    // becomes visible.
    let meta = q
        .store
        .complete_upload_checked(&bucket, &key, &input.upload_id, &parts, &cond, &sent)
        .await
        .s3()?;
    if let Some(size) = input.mpu_object_size
        && size != meta.size as i64
    {
        tracing::warn!(bucket = %bucket, key = %key, size, actual = meta.size, "x-amz-mp-object-size did not match the completed object");
    }
    Ok(completed(&input.bucket, &input.key, &meta))
}

/// CompleteMultipartUpload's answer for the object it made.
fn completed(bucket_name: &str, key: &str, meta: &quarry_storage::ObjectMeta) -> S3Response<CompleteMultipartUploadOutput> {
    let c = ChecksumFields::from(meta.checksum.as_ref());
    S3Response::new(CompleteMultipartUploadOutput {
        version_id: convert::written_version(meta),
        bucket: Some(bucket_name.to_owned()),
        key: Some(key.to_owned()),
        location: Some(format!("/{bucket_name}/{key}")),
        e_tag: Some(convert::etag(meta)),
        checksum_crc32: c.crc32,
        checksum_crc32c: c.crc32c,
        checksum_crc64nvme: c.crc64nvme,
        checksum_sha1: c.sha1,
        checksum_sha256: c.sha256,
        checksum_type: c.kind,
        ..Default::default()
    })
}

pub(super) async fn abort(q: &Quarry, req: S3Request<AbortMultipartUploadInput>) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let input = req.input;
    super::refuse::unsupported(&[("x-amz-if-match-initiated-time", input.if_match_initiated_time.is_some())])?;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    q.store.abort_upload(&bucket, &key, &input.upload_id).await.s3()?;
    Ok(S3Response::with_status(
        AbortMultipartUploadOutput::default(),
        http::StatusCode::NO_CONTENT,
    ))
}

pub(super) async fn list_uploads(
    q: &Quarry,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let max = match input.max_uploads {
        Some(n) if n < 0 => return Err(s3_error!(InvalidArgument, "max-uploads cannot be negative")),
        Some(n) => n.min(1000) as usize,
        None => 1000,
    };
    // With `encoding-type=url`, every key the answer names is URL-encoded (keys, common
    // prefixes, the prefix, delimiter and markers), as ListObjects does.
    let enc = super::list::encoder(input.encoding_type.as_ref())?;
    let owners = super::list::Owners::new(q, &bucket)?;
    let query = quarry_storage::UploadQuery {
        prefix: input.prefix.as_deref().unwrap_or_default(),
        delimiter: input.delimiter.as_deref(),
        key_marker: input.key_marker.as_deref().unwrap_or_default(),
        upload_id_marker: input.upload_id_marker.as_deref().unwrap_or_default(),
        max,
    };
    let page = q.store.list_uploads(&bucket, &query).await.s3()?;
    let uploads: Vec<MultipartUpload> = page
        .uploads
        .into_iter()
        .map(|u| {
            let o = owners.of(u.attrs.owner.as_deref());
            MultipartUpload {
                key: Some(enc(&u.key)),
                upload_id: Some(u.upload_id),
                initiated: Some(convert::ts(u.initiated)),
                storage_class: Some(StorageClass::from(
                    u.attrs.storage_class.clone().unwrap_or_else(|| "STANDARD".into()),
                )),
                initiator: Some(Initiator {
                    display_name: o.display_name.clone(),
                    id: o.id.clone(),
                }),
                owner: Some(o),
                checksum_algorithm: u.checksum.map(|(a, _)| convert::wire_algorithm(a)),
                checksum_type: u.checksum.map(|(_, k)| convert::wire_kind(k)),
            }
        })
        .collect();
    let prefixes = page.prefixes;
    let truncated = page.truncated;
    let (next_key, next_id) = match page.next {
        Some((k, id)) => (Some(enc(&k)), Some(id)),
        None => (None, None),
    };
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: input.prefix.as_deref().map(enc),
        delimiter: input.delimiter.as_deref().map(enc),
        key_marker: input.key_marker.as_deref().map(enc),
        upload_id_marker: input.upload_id_marker,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        encoding_type: input.encoding_type,
        uploads: (!uploads.is_empty()).then_some(uploads),
        common_prefixes: (!prefixes.is_empty()).then(|| prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(enc(&p)) }).collect()),
        ..Default::default()
    }))
}
