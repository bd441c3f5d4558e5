//! CreateBucket, HeadBucket, DeleteBucket, ListBuckets, GetBucketLocation.

use super::Quarry;
use super::convert;
use super::error::StorageResultExt;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

pub(super) async fn create(q: &Quarry, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
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
    if input.acl.as_ref().is_some_and(|a| a.as_str() != BucketCannedACL::PRIVATE) {
        return Err(s3_error!(
            InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        ));
    }
    if input.object_lock_enabled_for_bucket == Some(true) {
        return Err(s3_error!(NotImplemented, "Object Lock is not supported"));
    }
    q.store.create_bucket(&bucket).await.s3()?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", input.bucket)),
    }))
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
    let input = req.input;
    let max = match input.max_buckets {
        Some(n) if !(1..=10_000).contains(&n) => return Err(s3_error!(InvalidArgument, "max-buckets must be between 1 and 10000")),
        Some(n) => n as usize,
        None => usize::MAX,
    };
    let prefix = input.prefix.clone().unwrap_or_default();
    let after = input.continuation_token.clone().unwrap_or_default();
    let all: Vec<_> = q
        .store
        .list_buckets()
        .into_iter()
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
        owner: Some(convert::owner()),
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
