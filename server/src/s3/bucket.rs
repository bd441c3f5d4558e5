//! CreateBucket, HeadBucket, DeleteBucket, ListBuckets, GetBucketLocation.

use super::Quarry;
use super::convert;
use super::error::StorageResultExt;
use crate::iam::acl::Ownership;
use quarry_storage::BucketConfig;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

pub(super) async fn create(q: &Quarry, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
    let caller = super::caller(&req).unwrap_or_else(|| crate::iam::identity::ACCOUNT_ID.to_owned());
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    if let Some(loc) = input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
    {
        let loc = loc.as_str();
        if !loc.is_empty() && loc != q.region {
            return Err(s3_error!(
                IllegalLocationConstraintException,
                "The {loc} location constraint is incompatible for the region specific endpoint this request was sent to."
            ));
        }
    }
    if input.object_lock_enabled_for_bucket == Some(true) {
        return Err(s3_error!(NotImplemented, "Object Lock is not supported"));
    }
    let asked_ownership = match &input.object_ownership {
        Some(o) => Some(Ownership::parse(o.as_str()).ok_or_else(|| s3_error!(InvalidArgument, "Invalid x-amz-object-ownership header"))?),
        None => None,
    };
    let ownership = asked_ownership.unwrap_or(q.default_ownership);
    let asked = super::acl::acl_asked!(input, input.grant_write.as_deref(), None);
    let acl = if ownership.acls_enabled() {
        (!asked.is_empty())
            .then(|| asked.build_for_bucket(&q.iam.directory(), &caller))
            .transpose()?
    } else {
        let private = asked.canned.is_none_or(|a| a == BucketCannedACL::PRIVATE);
        let grants = asked
            .full_control
            .or(asked.read)
            .or(asked.read_acp)
            .or(asked.write)
            .or(asked.write_acp);
        if !private || grants.is_some() {
            return Err(s3_error!(
                InvalidBucketAclWithObjectOwnership,
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
            ));
        }
        None
    };
    if let Ok(existing) = q.store.head_bucket(&bucket) {
        let own = existing.owner.as_deref().unwrap_or(crate::iam::identity::ACCOUNT_ID) == caller;
        if own && q.region == "us-east-1" {
            // AWS's legacy in North Virginia: re-creating one's own bucket answers 200 and
            // resets its ACL (objects and other settings stay).
            if q.ownership(&bucket).acls_enabled() {
                let acl = asked.build_for_bucket(&q.iam.directory(), &caller)?;
                q.store
                    .set_bucket_config(&bucket, BucketConfig::Acl, Some(acl.to_json()))
                    .await
                    .s3()?;
            }
            return Ok(S3Response::new(CreateBucketOutput {
                location: Some(format!("/{}", input.bucket)),
            }));
        }
        return Err(already_exists(existing.owner.as_deref(), &caller));
    }
    match q.store.create_bucket_for(&bucket, Some(&caller)).await {
        Ok(_) => {}
        Err(quarry_storage::Error::BucketAlreadyExists(_)) => {
            let owner = q.store.head_bucket(&bucket).ok().and_then(|b| b.owner);
            return Err(already_exists(owner.as_deref(), &caller));
        }
        Err(e) => return Err(e).s3(),
    }
    // Written after the bucket: a crash between leaves it private and owner-enforced
    // (or the deployment's default), never more open than asked.
    if let Some(o) = asked_ownership {
        q.store
            .set_bucket_config(&bucket, BucketConfig::Ownership, Some(o.as_str().to_owned()))
            .await
            .s3()?;
    }
    if let Some(acl) = acl {
        q.store
            .set_bucket_config(&bucket, BucketConfig::Acl, Some(acl.to_json()))
            .await
            .s3()?;
    }
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", input.bucket)),
    }))
}

/// CreateBucket of a name already taken: the caller's own bucket, or another account's
/// (bucket names are one namespace for every account, as on S3).
fn already_exists(owner: Option<&str>, caller: &str) -> s3s::S3Error {
    if owner.unwrap_or(crate::iam::identity::ACCOUNT_ID) == caller {
        s3_error!(
            BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it."
        )
    } else {
        s3_error!(
            BucketAlreadyExists,
            "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
        )
    }
}

pub(super) async fn head(q: &Quarry, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    q.store.head_bucket(&bucket).s3()?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(q.region.clone()),
        ..Default::default()
    }))
}

pub(super) async fn delete(q: &Quarry, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    q.store.delete_bucket(&bucket).await.s3()?;
    Ok(S3Response::with_status(DeleteBucketOutput {}, http::StatusCode::NO_CONTENT))
}

pub(super) async fn list(q: &Quarry, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
    let caller = super::caller(&req).unwrap_or_else(|| crate::iam::identity::ACCOUNT_ID.to_owned());
    let input = req.input;
    let max = match input.max_buckets {
        Some(n) if !(1..=10_000).contains(&n) => return Err(s3_error!(InvalidArgument, "max-buckets must be between 1 and 10000")),
        Some(n) => n as usize,
        None => usize::MAX,
    };
    let prefix = input.prefix.clone().unwrap_or_default();
    let after = input.continuation_token.clone().unwrap_or_default();
    // Each account lists the buckets it owns, as on S3.
    let all: Vec<_> = q
        .store
        .list_buckets()
        .into_iter()
        .filter(|b| b.owner.as_deref().unwrap_or(crate::iam::identity::ACCOUNT_ID) == caller)
        .filter(|b| b.name.starts_with(&prefix) && b.name > after)
        .collect();
    let truncated = all.len() > max;
    let page: Vec<_> = all.into_iter().take(max).collect();
    let token = if truncated { page.last().map(|b| b.name.clone()) } else { None };
    let buckets = page
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(convert::ts(b.created)),
            bucket_region: Some(q.region.clone()),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(convert::owner(&q.account(Some(&caller)))),
        continuation_token: token,
        prefix: input.prefix,
    }))
}

pub(super) async fn location(q: &Quarry, req: S3Request<GetBucketLocationInput>) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    q.store.head_bucket(&bucket).s3()?;
    // us-east-1 is reported as an empty constraint, as S3 does.
    let constraint = (q.region != "us-east-1").then(|| BucketLocationConstraint::from(q.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint: constraint,
    }))
}
