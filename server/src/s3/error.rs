//! The one place a storage error becomes an S3 error: each variant maps to one code.

use quarry_storage::Error as E;
use s3s::{S3Error, S3ErrorCode, s3_error};

/// Map a storage error to the S3 error a client should see.
pub(crate) fn s3_err(e: E) -> S3Error {
    match e {
        E::InvalidBucketName(..) => s3_error!(InvalidBucketName, "{e}"),
        E::InvalidKey(why) if why.contains("longer") => s3_error!(KeyTooLongError, "Your key is too long"),
        E::InvalidKey(why) => s3_error!(InvalidArgument, "{why}"),
        E::NoSuchBucket(_) => s3_error!(NoSuchBucket, "The specified bucket does not exist"),
        E::BucketAlreadyExists(_) => {
            s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            )
        }
        E::BucketNotEmpty(_) => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty"),
        E::NoSuchKey { .. } | E::NoSuchKeyForCondition => s3_error!(NoSuchKey, "The specified key does not exist."),
        E::NoSuchVersion { .. } => s3_error!(NoSuchVersion, "The specified version does not exist."),
        E::DeleteMarker { version_id, requested } => {
            let mut err = if requested {
                s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource.")
            } else {
                s3_error!(NoSuchKey, "The specified key does not exist.")
            };
            let mut h = http::HeaderMap::new();
            h.insert("x-amz-delete-marker", http::HeaderValue::from_static("true"));
            if let Ok(v) = http::HeaderValue::from_str(&version_id) {
                h.insert("x-amz-version-id", v);
            }
            err.set_headers(h);
            err
        }
        E::NoSuchUpload(_) => s3_error!(
            NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        ),
        E::InvalidPart(_) => s3_error!(
            InvalidPart,
            "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
        ),
        E::InvalidPartOrder => s3_error!(
            InvalidPartOrder,
            "The list of parts was not in ascending order. The parts list must be specified in order by part number."
        ),
        E::EntityTooSmall { .. } => s3_error!(
            EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size."
        ),
        E::InvalidPartNumber(_) => s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"),
        E::InvalidPartNumberForObject(_) => {
            let mut err = S3Error::with_message(
                S3ErrorCode::Custom("InvalidPartNumber".into()),
                "The requested partnumber is not satisfiable",
            );
            err.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
            err
        }
        E::PreconditionFailed(_) => s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"),
        E::InvalidRange { .. } => s3_error!(InvalidRange, "The requested range is not satisfiable"),
        E::BadChecksum { algorithm, .. } => s3_error!(BadDigest, "The {algorithm} you specified did not match the calculated checksum."),
        E::InvalidChecksum(_) => s3_error!(InvalidRequest, "Value for x-amz-checksum header is invalid."),
        E::InvalidDigest => s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."),
        E::BadDigest => s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received."),
        E::InvalidArgument(m) => s3_error!(InvalidArgument, "{m}"),
        E::IncompleteBody(m) => s3_error!(
            IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header: {m}"
        ),
        E::EntityTooLarge { .. } => s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size."),
        E::MetadataTooLarge { .. } => s3_error!(MetadataTooLarge, "Your metadata headers exceed the maximum allowed metadata size."),
        E::Quorum { .. } => {
            tracing::warn!(error = %e, "drive quorum not reached");
            s3_error!(
                ServiceUnavailable,
                "Too few drives could serve this request; it was not applied. Please retry."
            )
        }
        E::Io { ref source, .. } if matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EROFS)) => {
            tracing::error!(error = %e, "drive cannot take writes");
            s3_error!(
                ServiceUnavailable,
                "The storage cannot take writes right now (full or read-only). Please retry later."
            )
        }
        E::Corrupt { .. } | E::Io { .. } | E::Drive(_) | E::Index(_) | E::IndexCommit { .. } => {
            tracing::error!(error = %e, "storage failure");
            s3_error!(InternalError, "We encountered an internal error. Please try again.")
        }
    }
}

/// `?`-friendly conversion for storage results.
pub(crate) trait StorageResultExt<T> {
    fn s3(self) -> s3s::S3Result<T>;
}

impl<T> StorageResultExt<T> for quarry_storage::Result<T> {
    fn s3(self) -> s3s::S3Result<T> {
        self.map_err(s3_err)
    }
}
