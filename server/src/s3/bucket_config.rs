//! Bucket configuration: versioning and bucket policies, and reads for features Quarry does
//! not offer yet. Tools (Terraform, rclone, backup and cleanup scripts, SDK feature probes)
//! read these before acting; each answers what is true of every Quarry bucket today, with
//! AWS's code for "none set": no default encryption, no lifecycle, no CORS, no bucket tags,
//! no object lock, and ownership "bucket owner enforced". Writing any of those is still
//! `NotImplemented`.

use super::Quarry;
use super::convert;
use super::error::StorageResultExt;
use crate::iam::acl::Ownership;
use quarry_storage::{BucketConfig, Versioning};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

fn exists(q: &Quarry, bucket: &str) -> S3Result<()> {
    q.store.head_bucket(&convert::bucket(bucket)?).s3().map(|_| ())
}

pub(super) async fn versioning(q: &Quarry, req: S3Request<GetBucketVersioningInput>) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let state = q.store.versioning(&convert::bucket(&req.input.bucket)?).s3()?;
    // A bucket that never had versioning enabled has no Status element.
    let status = match state {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED)),
        Versioning::Suspended => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::SUSPENDED)),
    };
    Ok(S3Response::new(GetBucketVersioningOutput { status, mfa_delete: None }))
}

pub(super) async fn put_versioning(
    q: &Quarry,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    q.store.head_bucket(&bucket).s3()?;
    let conf = input.versioning_configuration;
    if conf.mfa_delete.as_ref().is_some_and(|m| m.as_str() == MFADelete::ENABLED) {
        return Err(s3_error!(NotImplemented, "MFA Delete is not supported"));
    }
    let state = match conf.status.as_ref().map(BucketVersioningStatus::as_str) {
        Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
        Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
        _ => {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
    };
    q.store.set_versioning(&bucket, state).await.s3()?;
    Ok(S3Response::new(PutBucketVersioningOutput {}))
}

pub(super) async fn policy(q: &Quarry, req: S3Request<GetBucketPolicyInput>) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    match q.store.bucket_policy(&bucket).s3()? {
        Some(text) => Ok(S3Response::new(GetBucketPolicyOutput {
            policy: Some(text.to_string()),
        })),
        None => Err(s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist")),
    }
}

/// Largest bucket policy AWS accepts.
const MAX_POLICY: usize = 20 * 1024;

pub(super) async fn put_policy(q: &Quarry, req: S3Request<PutBucketPolicyInput>) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    q.store.head_bucket(&bucket).s3()?;
    if input.policy.len() > MAX_POLICY {
        let mut e = s3s::S3Error::with_message(
            s3s::S3ErrorCode::Custom("PolicyTooLarge".into()),
            "Policies must be no larger than 20 KB",
        );
        e.set_status_code(http::StatusCode::BAD_REQUEST);
        return Err(e);
    }
    let policy = crate::iam::policy::Policy::parse(&input.policy, true)
        .map_err(|e| s3_error!(MalformedPolicy, "Policy has invalid resource: {}", e))?;
    // Every Resource must lie in this bucket, as AWS requires of a bucket policy.
    if !policy.resources_within(&input.bucket) {
        return Err(s3_error!(MalformedPolicy, "Policy has invalid resource"));
    }
    q.store.set_bucket_policy(&bucket, Some(input.policy)).await.s3()?;
    Ok(S3Response::new(PutBucketPolicyOutput {}))
}

pub(super) async fn delete_policy(q: &Quarry, req: S3Request<DeleteBucketPolicyInput>) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    q.store.head_bucket(&bucket).s3()?;
    if q.store.bucket_policy(&bucket).s3()?.is_some() {
        q.store.set_bucket_policy(&bucket, None).await.s3()?;
    }
    Ok(S3Response::new(DeleteBucketPolicyOutput {}))
}

pub(super) async fn policy_status(
    q: &Quarry,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    let Some(text) = q.store.bucket_policy(&bucket).s3()? else {
        return Err(s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist"));
    };
    let public = crate::iam::policy::Policy::parse(&text, true).is_ok_and(|p| p.is_public());
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus { is_public: Some(public) }),
    }))
}

pub(super) async fn encryption(q: &Quarry, req: S3Request<GetBucketEncryptionInput>) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
    exists(q, &req.input.bucket)?;
    Err(s3_error!(
        ServerSideEncryptionConfigurationNotFoundError,
        "The server side encryption configuration was not found"
    ))
}

pub(super) async fn lifecycle(
    q: &Quarry,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    exists(q, &req.input.bucket)?;
    Err(s3_error!(
        NoSuchLifecycleConfiguration,
        "The lifecycle configuration does not exist"
    ))
}

pub(super) async fn cors(q: &Quarry, req: S3Request<GetBucketCorsInput>) -> S3Result<S3Response<GetBucketCorsOutput>> {
    exists(q, &req.input.bucket)?;
    Err(s3_error!(NoSuchCORSConfiguration, "The CORS configuration does not exist"))
}

pub(super) async fn tagging(q: &Quarry, req: S3Request<GetBucketTaggingInput>) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    exists(q, &req.input.bucket)?;
    Err(s3_error!(NoSuchTagSet, "The TagSet does not exist"))
}

pub(super) async fn object_lock(
    q: &Quarry,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    exists(q, &req.input.bucket)?;
    Err(s3_error!(
        ObjectLockConfigurationNotFoundError,
        "Object Lock configuration does not exist for this bucket"
    ))
}

pub(super) async fn ownership(
    q: &Quarry,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    exists(q, &req.input.bucket)?;
    let Some(o) = crate::iam::acl::reported_ownership(&q.store, &bucket, q.default_ownership) else {
        return Err(s3_error!(
            OwnershipControlsNotFoundError,
            "The bucket ownership controls were not found"
        ));
    };
    let rule = OwnershipControlsRule {
        object_ownership: ObjectOwnership::from(o.as_str().to_owned()),
    };
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls { rules: vec![rule] }),
    }))
}

pub(super) async fn put_ownership(
    q: &Quarry,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    exists(q, &req.input.bucket)?;
    let rules = &req.input.ownership_controls.rules;
    let [rule] = rules.as_slice() else {
        return Err(s3_error!(MalformedXML, "OwnershipControls takes exactly one rule"));
    };
    let o = Ownership::parse(rule.object_ownership.as_str())
        .ok_or_else(|| s3_error!(MalformedXML, "Invalid ObjectOwnership {}", rule.object_ownership.as_str()))?;
    if o == Ownership::BucketOwnerEnforced && q.ownership(&bucket).acls_enabled() {
        // ACLs go off: only a bucket ACL that grants nothing beyond the owner may stay.
        let owner = q.bucket_owner(&bucket)?;
        let acl = q.store.bucket_config(&bucket, BucketConfig::Acl).s3()?;
        if acl.is_some_and(|a| crate::iam::acl::Acl::from_json(&a) != crate::iam::acl::Acl::private(&owner)) {
            return Err(s3_error!(
                InvalidBucketAclWithObjectOwnership,
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
            ));
        }
    }
    q.store
        .set_bucket_config(&bucket, BucketConfig::Ownership, Some(o.as_str().to_owned()))
        .await
        .s3()?;
    Ok(S3Response::new(PutBucketOwnershipControlsOutput {}))
}

/// Deleting the controls leaves the bucket without any: ACLs on, objects owned by their
/// writers (AWS's behaviour for a bucket without ownership controls).
pub(super) async fn delete_ownership(
    q: &Quarry,
    req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    exists(q, &req.input.bucket)?;
    q.store
        .set_bucket_config(&bucket, BucketConfig::Ownership, Some(String::new()))
        .await
        .s3()?;
    Ok(S3Response::with_status(
        DeleteBucketOwnershipControlsOutput {},
        http::StatusCode::NO_CONTENT,
    ))
}
