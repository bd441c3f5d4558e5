//! ACLs as on a current S3 bucket with Object Ownership "bucket owner enforced" (the AWS
//! default since 2023): ACLs are disabled, the owner has FULL_CONTROL of everything, reads
//! of ACLs say so, and writes are accepted only when they grant nothing else
//! (`private`, `bucket-owner-full-control`, or a policy naming just the owner); anything
//! else is `AccessControlListNotSupported`, as AWS answers.

use super::Quarry;
use super::convert;
use super::error::StorageResultExt;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

fn owner_grants() -> Vec<Grant> {
    let o = convert::owner();
    vec![Grant {
        grantee: Some(Grantee {
            display_name: o.display_name,
            email_address: None,
            id: o.id,
            type_: Type::from(Type::CANONICAL_USER.to_owned()),
            uri: None,
        }),
        permission: Some(Permission::from(Permission::FULL_CONTROL.to_owned())),
    }]
}

fn not_supported() -> s3s::S3Error {
    s3_error!(AccessControlListNotSupported, "The bucket does not allow ACLs")
}

/// Whether a canned ACL (header `x-amz-acl`) is one an ACL-less bucket accepts.
pub(crate) fn check_canned(acl: Option<&str>) -> S3Result<()> {
    match acl {
        None | Some("private" | "bucket-owner-full-control") => Ok(()),
        Some(_) => Err(not_supported()),
    }
}

/// Whether explicit grants (headers or an AccessControlPolicy body) only restate the owner's FULL_CONTROL.
pub(crate) fn check_grants(
    canned: Option<&str>,
    grant_headers: [Option<&String>; 5],
    policy: Option<&AccessControlPolicy>,
) -> S3Result<()> {
    check_canned(canned)?;
    let owner_id = convert::owner().id.unwrap_or_default();
    let [full, read, read_acp, write, write_acp] = grant_headers;
    if read.or(read_acp).or(write).or(write_acp).is_some() {
        return Err(not_supported());
    }
    if let Some(f) = full
        && f.split(',')
            .any(|g| g.trim() != format!("id={owner_id}") && g.trim() != format!("id=\"{owner_id}\""))
    {
        return Err(not_supported());
    }
    if let Some(p) = policy {
        let only_owner = p.grants.iter().flatten().all(|g| {
            g.permission.as_ref().is_some_and(|p| p.as_str() == Permission::FULL_CONTROL)
                && g.grantee.as_ref().is_some_and(|e| e.id.as_deref() == Some(owner_id.as_str()))
        });
        if !only_owner {
            return Err(not_supported());
        }
    }
    Ok(())
}

/// [`check_grants`] on the ACL headers of an object write (PutObject, CopyObject,
/// CreateMultipartUpload).
macro_rules! check_object_write_acl {
    ($i:ident) => {
        $crate::s3::acl::check_grants(
            $i.acl.as_ref().map(s3s::dto::ObjectCannedACL::as_str),
            [
                $i.grant_full_control.as_ref(),
                $i.grant_read.as_ref(),
                $i.grant_read_acp.as_ref(),
                None,
                $i.grant_write_acp.as_ref(),
            ],
            None,
        )
    };
}
pub(crate) use check_object_write_acl;

pub(super) async fn get_bucket_acl(q: &Quarry, req: S3Request<GetBucketAclInput>) -> S3Result<S3Response<GetBucketAclOutput>> {
    q.store.head_bucket(&convert::bucket(&req.input.bucket)?).s3()?;
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(owner_grants()),
        owner: Some(convert::owner()),
    }))
}

pub(super) async fn put_bucket_acl(q: &Quarry, req: S3Request<PutBucketAclInput>) -> S3Result<S3Response<PutBucketAclOutput>> {
    let i = req.input;
    q.store.head_bucket(&convert::bucket(&i.bucket)?).s3()?;
    check_grants(
        i.acl.as_ref().map(BucketCannedACL::as_str),
        [
            i.grant_full_control.as_ref(),
            i.grant_read.as_ref(),
            i.grant_read_acp.as_ref(),
            i.grant_write.as_ref(),
            i.grant_write_acp.as_ref(),
        ],
        i.access_control_policy.as_ref(),
    )?;
    Ok(S3Response::new(PutBucketAclOutput {}))
}

/// An object ACL call names an existing object (version).
fn object_exists(q: &Quarry, bucket: &str, key: &str, version_id: Option<&str>) -> S3Result<()> {
    let version = convert::version(version_id)?;
    q.store
        .head_object(&convert::bucket(bucket)?, &convert::key(key)?, version.as_ref())
        .s3()
        .map(|_| ())
}

pub(super) async fn get_object_acl(q: &Quarry, req: S3Request<GetObjectAclInput>) -> S3Result<S3Response<GetObjectAclOutput>> {
    let i = req.input;
    object_exists(q, &i.bucket, &i.key, i.version_id.as_deref())?;
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(owner_grants()),
        owner: Some(convert::owner()),
        ..Default::default()
    }))
}

pub(super) async fn put_object_acl(q: &Quarry, req: S3Request<PutObjectAclInput>) -> S3Result<S3Response<PutObjectAclOutput>> {
    let i = req.input;
    object_exists(q, &i.bucket, &i.key, i.version_id.as_deref())?;
    check_grants(
        i.acl.as_ref().map(ObjectCannedACL::as_str),
        [
            i.grant_full_control.as_ref(),
            i.grant_read.as_ref(),
            i.grant_read_acp.as_ref(),
            i.grant_write.as_ref(),
            i.grant_write_acp.as_ref(),
        ],
        i.access_control_policy.as_ref(),
    )?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}
