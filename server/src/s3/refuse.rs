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

/// The encryption fields of a write, as the request gives them.
pub(crate) struct WriteEncryption<'a> {
    pub sse: Option<&'a str>,
    pub kms_key_id: bool,
    pub kms_context: bool,
    pub bucket_key: bool,
    pub customer: CustomerKey<'a>,
}

/// The SSE-C fields of a request (the object's key, or a copy source's).
pub(crate) struct CustomerKey<'a> {
    pub algorithm: Option<&'a str>,
    pub key: Option<&'a str>,
    pub key_md5: bool,
}

impl CustomerKey<'_> {
    fn any(&self) -> bool {
        self.algorithm.is_some() || self.key.is_some() || self.key_md5
    }

    /// AWS's validation of an SSE-C triple: a bad request is a 400 whatever the server
    /// supports, so it is answered before the 501 below.
    fn validate(&self, prefix: &str) -> S3Result<()> {
        if !self.any() {
            return Ok(());
        }
        match self.algorithm {
            None => {
                return Err(s3_error!(
                    InvalidArgument,
                    "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm ({prefix}-customer-algorithm)"
                ));
            }
            Some("AES256") => {}
            Some(_) => {
                return Err(s3_error!(
                    InvalidEncryptionAlgorithmError,
                    "The encryption request you specified is not valid. The valid value is AES256."
                ));
            }
        }
        let Some(key) = self.key else {
            return Err(s3_error!(
                InvalidArgument,
                "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key ({prefix}-customer-key)"
            ));
        };
        match base64_simd::STANDARD.decode_to_vec(key.as_bytes()) {
            Ok(k) if k.len() == 32 => {}
            _ => {
                return Err(s3_error!(
                    InvalidArgument,
                    "The secret key was invalid for the specified algorithm ({prefix}-customer-key)"
                ));
            }
        }
        if !self.key_md5 {
            return Err(s3_error!(
                InvalidArgument,
                "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key ({prefix}-customer-key-MD5)"
            ));
        }
        Ok(())
    }
}

/// A write's encryption request: malformed or contradictory combinations are 400
/// InvalidArgument as on AWS; a well-formed request for encryption is 501 until server-side
/// encryption exists (never stored in plaintext behind a 200).
pub(crate) fn write_encryption(w: &WriteEncryption<'_>) -> S3Result<()> {
    if let Some(sse) = w.sse
        && !matches!(sse, "AES256" | "aws:kms" | "aws:kms:dsse")
    {
        return Err(s3_error!(
            InvalidArgument,
            "The encryption method specified is not supported (x-amz-server-side-encryption: {sse})"
        ));
    }
    if w.sse.is_some() && w.customer.any() {
        return Err(s3_error!(
            InvalidArgument,
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"
        ));
    }
    let kms = matches!(w.sse, Some("aws:kms" | "aws:kms:dsse"));
    if !kms && (w.kms_key_id || w.kms_context) {
        return Err(s3_error!(
            InvalidArgument,
            "x-amz-server-side-encryption-aws-kms-key-id and -context are only valid with x-amz-server-side-encryption: aws:kms"
        ));
    }
    w.customer.validate("x-amz-server-side-encryption")?;
    encryption(&[
        ("x-amz-server-side-encryption", w.sse.is_some()),
        ("x-amz-server-side-encryption-bucket-key-enabled", w.bucket_key),
        ("x-amz-server-side-encryption-customer-algorithm", w.customer.any()),
    ])
}

/// An SSE-C key on a read, a part upload or a copy source: validated, then 501.
pub(crate) fn customer_key(c: &CustomerKey<'_>, prefix: &'static str) -> S3Result<()> {
    c.validate(prefix)?;
    if c.any() {
        return Err(encryption_error(prefix));
    }
    Ok(())
}

/// SSE-S3/SSE-KMS and SSE-C fields of a write (PutObject, PostObject, CopyObject,
/// CreateMultipartUpload).
macro_rules! refuse_write_encryption {
    ($i:ident) => {
        $crate::s3::refuse::write_encryption(&$crate::s3::refuse::WriteEncryption {
            sse: $i.server_side_encryption.as_ref().map(|s| s.as_str()),
            kms_key_id: $i.ssekms_key_id.is_some(),
            kms_context: $i.ssekms_encryption_context.is_some(),
            bucket_key: $i.bucket_key_enabled == Some(true),
            customer: $crate::s3::refuse::CustomerKey {
                algorithm: $i.sse_customer_algorithm.as_deref(),
                key: $i.sse_customer_key.as_deref(),
                key_md5: $i.sse_customer_key_md5.is_some(),
            },
        })
    };
}
pub(crate) use refuse_write_encryption;

/// SSE-C fields of a read or a part upload (the customer's key for the object).
macro_rules! refuse_customer_key {
    ($i:ident) => {
        $crate::s3::refuse::customer_key(
            &$crate::s3::refuse::CustomerKey {
                algorithm: $i.sse_customer_algorithm.as_deref(),
                key: $i.sse_customer_key.as_deref(),
                key_md5: $i.sse_customer_key_md5.is_some(),
            },
            "x-amz-server-side-encryption",
        )
    };
}
pub(crate) use refuse_customer_key;

/// SSE-C fields naming a copy source's key (CopyObject, UploadPartCopy).
macro_rules! refuse_copy_source_key {
    ($i:ident) => {
        $crate::s3::refuse::customer_key(
            &$crate::s3::refuse::CustomerKey {
                algorithm: $i.copy_source_sse_customer_algorithm.as_deref(),
                key: $i.copy_source_sse_customer_key.as_deref(),
                key_md5: $i.copy_source_sse_customer_key_md5.is_some(),
            },
            "x-amz-copy-source-server-side-encryption",
        )
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

    const KEY: &str = "pO3upElrwuEXSoFwCfnZPdSsmt/xWeFa0N9KgDijwVs=";

    fn customer(algorithm: Option<&'static str>, key: Option<&'static str>, md5: bool) -> CustomerKey<'static> {
        CustomerKey {
            algorithm,
            key,
            key_md5: md5,
        }
    }

    fn write(sse: Option<&'static str>, kms_key_id: bool, c: CustomerKey<'static>) -> String {
        let w = WriteEncryption {
            sse,
            kms_key_id,
            kms_context: false,
            bucket_key: false,
            customer: c,
        };
        match write_encryption(&w) {
            Ok(()) => "ok".into(),
            Err(e) => e.code().as_str().to_owned(),
        }
    }

    #[test]
    fn bad_encryption_requests_are_400_before_the_501() {
        let none = || customer(None, None, false);
        let full = || customer(Some("AES256"), Some(KEY), true);
        assert_eq!(write(None, false, none()), "ok");
        assert_eq!(write(Some("AES256"), false, none()), "NotImplemented");
        assert_eq!(write(Some("aws:kms"), true, none()), "NotImplemented");
        assert_eq!(write(None, false, full()), "NotImplemented");
        assert_eq!(write(Some("aes:kms"), false, none()), "InvalidArgument");
        assert_eq!(write(Some("AES256"), false, full()), "InvalidArgument");
        assert_eq!(write(Some("aws:kms"), true, full()), "InvalidArgument");
        assert_eq!(write(Some("AES256"), true, none()), "InvalidArgument");
        assert_eq!(write(None, true, none()), "InvalidArgument");
        assert_eq!(
            write(None, false, customer(Some("AES128"), Some(KEY), true)),
            "InvalidEncryptionAlgorithmError"
        );
        assert_eq!(write(None, false, customer(Some("AES256"), None, true)), "InvalidArgument");
        assert_eq!(
            write(None, false, customer(Some("AES256"), Some("c2hvcnQ="), true)),
            "InvalidArgument"
        );
        assert_eq!(write(None, false, customer(Some("AES256"), Some(KEY), false)), "InvalidArgument");
        assert_eq!(write(None, false, customer(None, Some(KEY), true)), "InvalidArgument");
        let read = |c| customer_key(&c, "x-amz-server-side-encryption").map_err(|e| e.code().as_str().to_owned());
        assert_eq!(read(none()), Ok(()));
        assert_eq!(read(full()), Err("NotImplemented".to_owned()));
        assert_eq!(read(customer(Some("AES256"), None, false)), Err("InvalidArgument".to_owned()));
    }
}
