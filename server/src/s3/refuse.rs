//! What a request asks for and Quarry does not do is refused with an S3 error, never
//! dropped: a client that asked for encryption or a retention lock must not be told "200"
//! and then find plaintext or a deletable object.
//!
//! Each handler names the fields of its s3s input that it does not honour; the audit of
//! every input struct is in ARCHITECTURE.md ("Refused, never ignored"). Fields that change
//! nothing for Quarry are accepted on purpose: `x-amz-request-payer` (no bucket is
//! requester-pays, and AWS accepts the header on such buckets), `x-amz-bypass-governance-
//! retention` (no object is locked, so there is nothing to bypass), `x-amz-mfa` on deletes
//! (MFA Delete can never be enabled: PutBucketVersioning refuses it), and
//! `x-amz-optional-object-attributes` on listings (no object is archived, so there is no
//! restore status to report).

use s3s::{S3Error, S3Result, s3_error};

/// The first present header of `fields` (header name, present), if any.
fn first(fields: &[(&'static str, bool)]) -> Option<&'static str> {
    fields.iter().find(|(_, present)| *present).map(|(name, _)| *name)
}

/// Encryption headers: until server-side encryption exists, every one is 501 NotImplemented.
pub(crate) fn encryption(fields: &[(&'static str, bool)]) -> S3Result<()> {
    match first(fields) {
        None => Ok(()),
        Some(h) => Err(encryption_error(h)),
    }
}

pub(crate) fn encryption_error(header: &str) -> S3Error {
    s3_error!(
        NotImplemented,
        "Server-side encryption is not supported by this server ({header}); the request was not carried out"
    )
}

/// Object Lock headers on a write. No Quarry bucket has Object Lock enabled (CreateBucket
/// refuses it), so this is AWS's answer for a bucket without an Object Lock configuration.
pub(crate) fn object_lock(fields: &[(&'static str, bool)]) -> S3Result<()> {
    match first(fields) {
        None => Ok(()),
        Some(h) => Err(s3_error!(InvalidRequest, "Bucket is missing Object Lock Configuration ({h})")),
    }
}

/// Anything else a handler cannot honour.
pub(crate) fn unsupported(fields: &[(&'static str, bool)]) -> S3Result<()> {
    match first(fields) {
        None => Ok(()),
        Some(h) => Err(s3_error!(NotImplemented, "{h} is not supported by this server")),
    }
}

/// SSE-S3/SSE-KMS and SSE-C fields of a write (PutObject, PostObject, CopyObject,
/// CreateMultipartUpload).
macro_rules! refuse_write_encryption {
    ($i:ident) => {
        $crate::s3::refuse::encryption(&[
            ("x-amz-server-side-encryption", $i.server_side_encryption.is_some()),
            ("x-amz-server-side-encryption-aws-kms-key-id", $i.ssekms_key_id.is_some()),
            ("x-amz-server-side-encryption-context", $i.ssekms_encryption_context.is_some()),
            (
                "x-amz-server-side-encryption-bucket-key-enabled",
                $i.bucket_key_enabled == Some(true),
            ),
            (
                "x-amz-server-side-encryption-customer-algorithm",
                $i.sse_customer_algorithm.is_some(),
            ),
            ("x-amz-server-side-encryption-customer-key", $i.sse_customer_key.is_some()),
            ("x-amz-server-side-encryption-customer-key-MD5", $i.sse_customer_key_md5.is_some()),
        ])
    };
}
pub(crate) use refuse_write_encryption;

/// SSE-C fields of a read or a part upload (the customer's key for the object).
macro_rules! refuse_customer_key {
    ($i:ident) => {
        $crate::s3::refuse::encryption(&[
            (
                "x-amz-server-side-encryption-customer-algorithm",
                $i.sse_customer_algorithm.is_some(),
            ),
            ("x-amz-server-side-encryption-customer-key", $i.sse_customer_key.is_some()),
            ("x-amz-server-side-encryption-customer-key-MD5", $i.sse_customer_key_md5.is_some()),
        ])
    };
}
pub(crate) use refuse_customer_key;

/// SSE-C fields naming a copy source's key (CopyObject, UploadPartCopy).
macro_rules! refuse_copy_source_key {
    ($i:ident) => {
        $crate::s3::refuse::encryption(&[
            (
                "x-amz-copy-source-server-side-encryption-customer-algorithm",
                $i.copy_source_sse_customer_algorithm.is_some(),
            ),
            (
                "x-amz-copy-source-server-side-encryption-customer-key",
                $i.copy_source_sse_customer_key.is_some(),
            ),
            (
                "x-amz-copy-source-server-side-encryption-customer-key-MD5",
                $i.copy_source_sse_customer_key_md5.is_some(),
            ),
        ])
    };
}
pub(crate) use refuse_copy_source_key;

/// Object Lock fields of a write (PutObject, PostObject, CopyObject, CreateMultipartUpload).
macro_rules! refuse_object_lock {
    ($i:ident) => {
        $crate::s3::refuse::object_lock(&[
            ("x-amz-object-lock-mode", $i.object_lock_mode.is_some()),
            ("x-amz-object-lock-retain-until-date", $i.object_lock_retain_until_date.is_some()),
            ("x-amz-object-lock-legal-hold", $i.object_lock_legal_hold_status.is_some()),
        ])
    };
}
pub(crate) use refuse_object_lock;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_present_field_is_named() {
        assert!(encryption(&[("a", false), ("b", false)]).is_ok());
        let e = encryption(&[("a", false), ("b", true), ("c", true)]).unwrap_err();
        assert_eq!(e.code().as_str(), "NotImplemented");
        assert!(e.message().unwrap().contains("(b)"));
        let e = object_lock(&[("x-amz-object-lock-mode", true)]).unwrap_err();
        assert_eq!(e.code().as_str(), "InvalidRequest");
        assert!(unsupported(&[]).is_ok());
        assert_eq!(unsupported(&[("h", true)]).unwrap_err().code().as_str(), "NotImplemented");
    }
}
