//! ACL operations (Get/PutBucketAcl, Get/PutObjectAcl) and the ACLs of object writes.
//!
//! What an ACL does depends on the bucket's Object Ownership:
//! - `BucketOwnerEnforced` (AWS's default since 2023): ACLs are off, the bucket owner owns
//!   everything and has FULL_CONTROL; reads of ACLs say so, and writes are accepted only
//!   when they grant nothing else (`private`, `bucket-owner-full-control`, or grants
//!   naming just the owner); anything else is `AccessControlListNotSupported`.
//! - `ObjectWriter` and `BucketOwnerPreferred`: ACLs as S3 had them before, stored (the
//!   bucket's as a configuration document, an object's as an attribute of its version)
//!   and enforced with the policies by `auth.rs`. An object belongs to the account that
//!   wrote it (`ObjectWriter`), or to the bucket owner when it was written with
//!   `bucket-owner-full-control` (`BucketOwnerPreferred`).

use super::Quarry;
use super::convert;
use super::error::StorageResultExt;
use crate::iam::acl::{self as model, Acl, AclError, Grantee as G, Permission as P};
use crate::iam::identity::{AccountView, Directory};
use quarry_storage::{BucketConfig, BucketName};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

fn not_supported() -> S3Error {
    s3_error!(AccessControlListNotSupported, "The bucket does not allow ACLs")
}

fn acl_error(e: AclError) -> S3Error {
    let code = S3ErrorCode::from_bytes(e.code().as_bytes()).unwrap_or(S3ErrorCode::InvalidArgument);
    let mut err = S3Error::with_message(code, e.to_string());
    if matches!(e, AclError::UnsupportedCanned(_)) {
        err.set_status_code(http::StatusCode::NOT_IMPLEMENTED);
    } else {
        err.set_status_code(http::StatusCode::BAD_REQUEST);
    }
    err
}

/// What a request asks an ACL to be: a canned ACL, `x-amz-grant-*` headers, or an
/// AccessControlPolicy body (ACL operations only).
pub(crate) struct AclAsked<'a> {
    pub canned: Option<&'a str>,
    pub full_control: Option<&'a str>,
    pub read: Option<&'a str>,
    pub read_acp: Option<&'a str>,
    pub write: Option<&'a str>,
    pub write_acp: Option<&'a str>,
    pub body: Option<&'a AccessControlPolicy>,
}

impl AclAsked<'_> {
    fn headers(&self) -> [(P, Option<&str>); 5] {
        [
            (P::Read, self.read),
            (P::Write, self.write),
            (P::ReadAcp, self.read_acp),
            (P::WriteAcp, self.write_acp),
            (P::FullControl, self.full_control),
        ]
    }

    fn any_header(&self) -> bool {
        self.headers().iter().any(|(_, v)| v.is_some())
    }

    /// Nothing asked: the resource is private to its owner.
    pub fn is_empty(&self) -> bool {
        self.canned.is_none() && !self.any_header() && self.body.is_none()
    }

    /// The ACL asked for, for a resource owned by `owner` in a bucket owned by
    /// `bucket_owner` (account ids).
    fn build(&self, dir: &Directory, owner: &str, bucket_owner: &str) -> S3Result<Acl> {
        let sources = usize::from(self.canned.is_some()) + usize::from(self.any_header()) + usize::from(self.body.is_some());
        if sources > 1 {
            return Err(s3_error!(
                InvalidRequest,
                "Specifying more than one of a canned ACL, grant headers and an ACL body is not allowed"
            ));
        }
        if let Some(c) = self.canned {
            return Acl::canned(c, owner, bucket_owner).map_err(acl_error);
        }
        if self.any_header() {
            let grants = model::from_headers(dir, &self.headers()).map_err(acl_error)?;
            return Ok(Acl { grants });
        }
        let Some(body) = self.body else {
            return Ok(Acl::private(owner));
        };
        if let Some(id) = body.owner.as_ref().and_then(|o| o.id.as_deref()) {
            let owner_canonical = dir.account_or_id(owner).canonical_id;
            if id != owner_canonical {
                return Err(s3_error!(AccessDenied, "An ACL cannot change the owner"));
            }
        }
        let mut grants = Vec::new();
        for g in body.grants.iter().flatten() {
            let permission = g
                .permission
                .as_ref()
                .and_then(|p| P::parse(p.as_str()))
                .ok_or_else(|| s3_error!(MalformedACLError, "A grant has no valid Permission"))?;
            let e = g
                .grantee
                .as_ref()
                .ok_or_else(|| s3_error!(MalformedACLError, "A grant has no Grantee"))?;
            let grantee = match e.type_.as_str() {
                Type::CANONICAL_USER => model::resolve(dir, Some(e.id.as_deref().unwrap_or_default()), None, None),
                Type::AMAZON_CUSTOMER_BY_EMAIL => model::resolve(dir, None, Some(e.email_address.as_deref().unwrap_or_default()), None),
                Type::GROUP => model::resolve(dir, None, None, Some(e.uri.as_deref().unwrap_or_default())),
                other => Err(AclError::InvalidArgument(format!("Invalid grantee type {other}"))),
            }
            .map_err(acl_error)?;
            grants.push(model::Grant { grantee, permission });
        }
        if grants.len() > model::MAX_GRANTS {
            return Err(s3_error!(MalformedACLError, "An ACL holds at most {} grants", model::MAX_GRANTS));
        }
        Ok(Acl { grants })
    }

    /// The ACL asked for a new bucket of account `owner`.
    pub fn build_for_bucket(&self, dir: &Directory, owner: &str) -> S3Result<Acl> {
        self.build(dir, owner, owner)
    }

    /// On a bucket whose ACLs are off: accept only what grants the bucket owner alone
    /// (`private` only from the bucket owner itself: from another account's writer it
    /// would name the writer, as AWS judges it).
    fn check_owner_only(&self, owner_canonical: &str, writer_is_owner: bool) -> S3Result<()> {
        match self.canned {
            None | Some("bucket-owner-full-control") => {}
            Some("private") if writer_is_owner => {}
            Some(_) => return Err(not_supported()),
        }
        if self.read.or(self.read_acp).or(self.write).or(self.write_acp).is_some() {
            return Err(not_supported());
        }
        if let Some(f) = self.full_control
            && f.split(',')
                .any(|g| g.trim() != format!("id={owner_canonical}") && g.trim() != format!("id=\"{owner_canonical}\""))
        {
            return Err(not_supported());
        }
        if let Some(p) = self.body {
            let only_owner = p.grants.iter().flatten().all(|g| {
                g.permission.as_ref().is_some_and(|p| p.as_str() == Permission::FULL_CONTROL)
                    && g.grantee.as_ref().is_some_and(|e| e.id.as_deref() == Some(owner_canonical))
            });
            if !only_owner {
                return Err(not_supported());
            }
        }
        Ok(())
    }
}

/// The [`AclAsked`] of an input with the usual field names (`acl`, `grant_*`).
macro_rules! acl_asked {
    ($i:ident, $write:expr, $body:expr) => {
        $crate::s3::acl::AclAsked {
            canned: $i.acl.as_ref().map(|a| a.as_str()),
            full_control: $i.grant_full_control.as_deref(),
            read: $i.grant_read.as_deref(),
            read_acp: $i.grant_read_acp.as_deref(),
            write: $write,
            write_acp: $i.grant_write_acp.as_deref(),
            body: $body,
        }
    };
}
pub(crate) use acl_asked;

/// Who owns an object a write makes, and its ACL (both `None`: the bucket owner's, and
/// private), per the bucket's Object Ownership. `caller` is the writer's account.
pub(crate) fn object_write_acl(
    q: &Quarry,
    bucket: &BucketName,
    caller: Option<&str>,
    asked: &AclAsked<'_>,
) -> S3Result<(Option<String>, Option<String>)> {
    let bucket_owner = q.bucket_owner(bucket)?;
    let ownership = q.ownership(bucket);
    if !ownership.acls_enabled() {
        asked.check_owner_only(
            &q.account(Some(&bucket_owner)).canonical_id,
            caller.is_none_or(|c| c == bucket_owner),
        )?;
        return Ok((None, None));
    }
    let writer = caller.unwrap_or(&bucket_owner);
    let to_bucket_owner = ownership == model::Ownership::BucketOwnerPreferred && asked.canned == Some("bucket-owner-full-control");
    let owner = if to_bucket_owner { bucket_owner.as_str() } else { writer };
    let acl = if asked.is_empty() {
        None
    } else {
        Some(asked.build(&q.iam.directory(), owner, &bucket_owner)?.to_json())
    };
    Ok(((owner != bucket_owner).then(|| owner.to_owned()), acl))
}

/// The ACL as S3's XML has it.
fn wire_grants(dir: &Directory, acl: &Acl) -> Vec<Grant> {
    acl.grants
        .iter()
        .map(|g| {
            let grantee = match &g.grantee {
                G::Account(id) => {
                    let a: AccountView = dir.account_or_id(id);
                    Grantee {
                        display_name: Some(a.display_name),
                        email_address: None,
                        id: Some(a.canonical_id),
                        type_: Type::from(Type::CANONICAL_USER.to_owned()),
                        uri: None,
                    }
                }
                group => Grantee {
                    display_name: None,
                    email_address: None,
                    id: None,
                    type_: Type::from(Type::GROUP.to_owned()),
                    uri: Some(
                        match group {
                            G::AllUsers => model::ALL_USERS_URI,
                            G::AuthenticatedUsers => model::AUTHENTICATED_USERS_URI,
                            _ => model::LOG_DELIVERY_URI,
                        }
                        .to_owned(),
                    ),
                },
            };
            Grant {
                grantee: Some(grantee),
                permission: Some(Permission::from(g.permission.as_str().to_owned())),
            }
        })
        .collect()
}

/// The stored ACL of a resource owned by `owner`, or `private` when none is stored.
fn effective(stored: Option<&str>, owner: &str) -> Acl {
    stored.map_or_else(|| Acl::private(owner), Acl::from_json)
}

pub(super) async fn get_bucket_acl(q: &Quarry, req: S3Request<GetBucketAclInput>) -> S3Result<S3Response<GetBucketAclOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    let owner = q.bucket_owner(&bucket)?;
    let stored = if q.ownership(&bucket).acls_enabled() {
        q.store.bucket_config(&bucket, BucketConfig::Acl).s3()?
    } else {
        None
    };
    let dir = q.iam.directory();
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(wire_grants(&dir, &effective(stored.as_deref(), &owner))),
        owner: Some(convert::owner(&dir.account_or_id(&owner))),
    }))
}

pub(super) async fn put_bucket_acl(q: &Quarry, req: S3Request<PutBucketAclInput>) -> S3Result<S3Response<PutBucketAclOutput>> {
    let caller = super::caller(&req);
    let i = req.input;
    let bucket = convert::bucket(&i.bucket)?;
    let owner = q.bucket_owner(&bucket)?;
    let asked = acl_asked!(i, i.grant_write.as_deref(), i.access_control_policy.as_ref());
    if !q.ownership(&bucket).acls_enabled() {
        // `private` restates the owner's FULL_CONTROL only when the owner sends it.
        asked.check_owner_only(&q.account(Some(&owner)).canonical_id, caller.as_deref().is_none_or(|c| c == owner))?;
        return Ok(S3Response::new(PutBucketAclOutput {}));
    }
    if asked.is_empty() {
        return Err(s3_error!(
            MissingSecurityHeader,
            "Your request was missing a required header: x-amz-acl, a grant header, or an ACL body"
        ));
    }
    let acl = asked.build(&q.iam.directory(), &owner, &owner)?;
    q.store
        .set_bucket_config(&bucket, BucketConfig::Acl, Some(acl.to_json()))
        .await
        .s3()?;
    Ok(S3Response::new(PutBucketAclOutput {}))
}

pub(super) async fn get_object_acl(q: &Quarry, req: S3Request<GetObjectAclInput>) -> S3Result<S3Response<GetObjectAclOutput>> {
    let i = req.input;
    let bucket = convert::bucket(&i.bucket)?;
    let version = convert::version(i.version_id.as_deref())?;
    let meta = q.store.head_object(&bucket, &convert::key(&i.key)?, version.as_ref()).s3()?;
    let owner = match &meta.attrs.owner {
        Some(o) => o.clone(),
        None => q.bucket_owner(&bucket)?,
    };
    let stored = if q.ownership(&bucket).acls_enabled() {
        meta.attrs.acl.as_deref()
    } else {
        None
    };
    let dir = q.iam.directory();
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(wire_grants(&dir, &effective(stored, &owner))),
        owner: Some(convert::owner(&dir.account_or_id(&owner))),
        ..Default::default()
    }))
}

pub(super) async fn put_object_acl(q: &Quarry, req: S3Request<PutObjectAclInput>) -> S3Result<S3Response<PutObjectAclOutput>> {
    let caller = super::caller(&req);
    let i = req.input;
    let bucket = convert::bucket(&i.bucket)?;
    let key = convert::key(&i.key)?;
    let version = convert::version(i.version_id.as_deref())?;
    let meta = q.store.head_object(&bucket, &key, version.as_ref()).s3()?;
    let bucket_owner = q.bucket_owner(&bucket)?;
    let owner = meta.attrs.owner.clone().unwrap_or_else(|| bucket_owner.clone());
    let asked = acl_asked!(i, i.grant_write.as_deref(), i.access_control_policy.as_ref());
    if !q.ownership(&bucket).acls_enabled() {
        asked.check_owner_only(&q.account(Some(&owner)).canonical_id, caller.as_deref().is_none_or(|c| c == owner))?;
        return Ok(S3Response::new(PutObjectAclOutput::default()));
    }
    if asked.is_empty() {
        return Err(s3_error!(
            MissingSecurityHeader,
            "Your request was missing a required header: x-amz-acl, a grant header, or an ACL body"
        ));
    }
    let acl = asked.build(&q.iam.directory(), &owner, &bucket_owner)?.to_json();
    // The version the ACL was checked against is the one changed.
    let v = meta.version_id.as_deref().and_then(|v| quarry_storage::VersionId::parse(v).ok());
    q.store
        .update_attrs(&bucket, &key, v.as_ref().or(version.as_ref()), move |a| a.acl = Some(acl))
        .await
        .s3()?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}
