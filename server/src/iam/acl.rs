//! Access control lists, as S3 has them on buckets whose Object Ownership allows them
//! (`ObjectWriter`, `BucketOwnerPreferred`): grants of READ, WRITE, READ_ACP, WRITE_ACP or
//! FULL_CONTROL to accounts and to the AllUsers, AuthenticatedUsers and LogDelivery groups.
//!
//! The model is wire-free: grantees are account ids here, and `s3/acl.rs` converts to and
//! from canonical ids, e-mail addresses and S3's XML. An ACL is stored as JSON (a bucket
//! configuration document, or an object version's attribute) and is evaluated by
//! [`Acl::allows`] together with policies (`auth.rs`).

use serde::{Deserialize, Serialize};

use super::identity::Directory;

pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY_URI: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// Grants an ACL may hold (AWS: 100).
pub const MAX_GRANTS: usize = 100;

/// A bucket's Object Ownership: who owns the objects others write, and whether ACLs
/// count at all (`BucketOwnerEnforced`: the bucket owner owns everything, ACLs are off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ownership {
    #[default]
    BucketOwnerEnforced,
    BucketOwnerPreferred,
    ObjectWriter,
}

impl Ownership {
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::BucketOwnerEnforced => "BucketOwnerEnforced",
            Ownership::BucketOwnerPreferred => "BucketOwnerPreferred",
            Ownership::ObjectWriter => "ObjectWriter",
        }
    }

    pub fn parse(s: &str) -> Option<Ownership> {
        Some(match s {
            "BucketOwnerEnforced" => Ownership::BucketOwnerEnforced,
            "BucketOwnerPreferred" => Ownership::BucketOwnerPreferred,
            "ObjectWriter" => Ownership::ObjectWriter,
            _ => return None,
        })
    }

    /// Whether ACLs are in force.
    pub fn acls_enabled(self) -> bool {
        self != Ownership::BucketOwnerEnforced
    }
}

impl std::str::FromStr for Ownership {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ownership::parse(s).ok_or_else(|| format!("{s:?} is not BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter"))
    }
}

/// A bucket's Object Ownership: its stored setting (an empty record: the controls were
/// deleted, which leaves ACLs on as with `ObjectWriter`, as on AWS), else the deployment's
/// default (buckets created without one, and those made before ownership was kept).
pub fn bucket_ownership(store: &quarry_storage::Store, bucket: &quarry_storage::BucketName, default: Ownership) -> Ownership {
    match stored_ownership(store, bucket) {
        Some(Some(o)) => o,
        Some(None) => Ownership::ObjectWriter,
        None => default,
    }
}

/// What GetBucketOwnershipControls reports: `None` when the bucket has no controls
/// (deleted, or never set where the default is `ObjectWriter`).
pub fn reported_ownership(store: &quarry_storage::Store, bucket: &quarry_storage::BucketName, default: Ownership) -> Option<Ownership> {
    match stored_ownership(store, bucket) {
        Some(o) => o,
        None => (default != Ownership::ObjectWriter).then_some(default),
    }
}

/// The stored record: `None` absent, `Some(None)` deleted controls, `Some(Some(o))` set.
fn stored_ownership(store: &quarry_storage::Store, bucket: &quarry_storage::BucketName) -> Option<Option<Ownership>> {
    let text = store.bucket_config(bucket, quarry_storage::BucketConfig::Ownership).ok()??;
    if text.is_empty() {
        return Some(None);
    }
    Some(Some(Ownership::parse(&text).unwrap_or_else(|| {
        tracing::error!(bucket = %bucket, "a stored Object Ownership does not parse; ACLs are off");
        Ownership::BucketOwnerEnforced
    })))
}

/// Who a grant is to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id")]
pub enum Grantee {
    /// An account, by its 12-digit id.
    Account(String),
    AllUsers,
    AuthenticatedUsers,
    LogDelivery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    FullControl,
    Read,
    Write,
    ReadAcp,
    WriteAcp,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FullControl => "FULL_CONTROL",
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Some(match s {
            "FULL_CONTROL" => Permission::FullControl,
            "READ" => Permission::Read,
            "WRITE" => Permission::Write,
            "READ_ACP" => Permission::ReadAcp,
            "WRITE_ACP" => Permission::WriteAcp,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// An ACL's grants (its owner is the bucket's or the object's owner, kept beside it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub grants: Vec<Grant>,
}

/// A request's identity as ACLs see it.
#[derive(Clone, Copy, Debug)]
pub enum Who<'a> {
    Anonymous,
    /// A signed request of any principal of this account.
    Account(&'a str),
}

/// Why an ACL could not be built, with AWS's code (all 400).
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("The e-mail address you provided does not match any account on record.")]
    UnresolvableEmail,
    #[error("{0}")]
    Malformed(String),
    #[error("The canned ACL {0} is not supported")]
    UnsupportedCanned(String),
}

impl AclError {
    pub fn code(&self) -> &'static str {
        match self {
            AclError::InvalidArgument(_) => "InvalidArgument",
            AclError::UnresolvableEmail => "UnresolvableGrantByEmailAddress",
            AclError::Malformed(_) => "MalformedACLError",
            AclError::UnsupportedCanned(_) => "NotImplemented",
        }
    }
}

fn grant(grantee: Grantee, permission: Permission) -> Grant {
    Grant { grantee, permission }
}

impl Acl {
    /// An ACL that gives `owner` FULL_CONTROL and nothing else (`private`).
    pub fn private(owner: &str) -> Acl {
        Acl {
            grants: vec![grant(Grantee::Account(owner.into()), Permission::FullControl)],
        }
    }

    /// A canned ACL (`x-amz-acl`) for a resource owned by `owner` in a bucket owned by
    /// `bucket_owner` (the same account for a bucket's own ACL).
    pub fn canned(name: &str, owner: &str, bucket_owner: &str) -> Result<Acl, AclError> {
        // The owner's FULL_CONTROL comes last, after what the canned ACL adds (Ceph's
        // order; S3 gives grants no order).
        let mut acl = Acl::default();
        let g = &mut acl.grants;
        match name {
            "private" => {}
            "public-read" => g.push(grant(Grantee::AllUsers, Permission::Read)),
            "public-read-write" => {
                g.push(grant(Grantee::AllUsers, Permission::Read));
                g.push(grant(Grantee::AllUsers, Permission::Write));
            }
            "authenticated-read" => g.push(grant(Grantee::AuthenticatedUsers, Permission::Read)),
            "bucket-owner-read" => {
                if bucket_owner != owner {
                    g.push(grant(Grantee::Account(bucket_owner.into()), Permission::Read));
                }
            }
            "bucket-owner-full-control" => {
                if bucket_owner != owner {
                    g.push(grant(Grantee::Account(bucket_owner.into()), Permission::FullControl));
                }
            }
            "log-delivery-write" => {
                g.push(grant(Grantee::LogDelivery, Permission::Write));
                g.push(grant(Grantee::LogDelivery, Permission::ReadAcp));
            }
            // Grants READ to Amazon EC2, which is no grantee here.
            "aws-exec-read" => return Err(AclError::UnsupportedCanned(name.into())),
            other => return Err(AclError::InvalidArgument(format!("{other} is not a canned ACL"))),
        }
        g.push(grant(Grantee::Account(owner.into()), Permission::FullControl));
        Ok(acl)
    }

    /// Whether the ACL gives `who` permission `want` (FULL_CONTROL gives every one).
    pub fn allows(&self, who: Who<'_>, want: Permission) -> bool {
        self.grants.iter().any(|g| {
            (g.permission == want || g.permission == Permission::FullControl)
                && match (&g.grantee, who) {
                    (Grantee::AllUsers, _) => true,
                    (Grantee::AuthenticatedUsers, Who::Account(_)) => true,
                    (Grantee::Account(a), Who::Account(b)) => a == b,
                    _ => false,
                }
        })
    }

    /// Whether anyone outside the owner's account is granted anything (for `IsPublic`-
    /// style questions: AllUsers or AuthenticatedUsers).
    pub fn is_public(&self) -> bool {
        self.grants
            .iter()
            .any(|g| matches!(g.grantee, Grantee::AllUsers | Grantee::AuthenticatedUsers))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an ACL serialises")
    }

    /// A stored ACL; one that does not parse grants nothing beyond the owner's rights
    /// (which the authoriser gives the owner without reading the ACL).
    pub fn from_json(text: &str) -> Acl {
        serde_json::from_str(text).unwrap_or_else(|e| {
            tracing::error!(error = %e, "a stored ACL does not parse; it grants nothing");
            Acl::default()
        })
    }
}

/// The grantee a wire grantee names: a canonical user id, an e-mail address, or a group
/// URI, resolved against the accounts in `dir`.
pub fn resolve(dir: &Directory, id: Option<&str>, email: Option<&str>, uri: Option<&str>) -> Result<Grantee, AclError> {
    if let Some(id) = id {
        return dir
            .account_by_canonical(id)
            .map(|a| Grantee::Account(a.id.clone()))
            .ok_or_else(|| AclError::InvalidArgument("Invalid id".into()));
    }
    if let Some(email) = email {
        return dir
            .account_by_email(email)
            .map(|a| Grantee::Account(a.id.clone()))
            .ok_or(AclError::UnresolvableEmail);
    }
    match uri {
        Some(ALL_USERS_URI) => Ok(Grantee::AllUsers),
        Some(AUTHENTICATED_USERS_URI) => Ok(Grantee::AuthenticatedUsers),
        Some(LOG_DELIVERY_URI) => Ok(Grantee::LogDelivery),
        Some(other) => Err(AclError::InvalidArgument(format!("Invalid group uri {other}"))),
        None => Err(AclError::Malformed(
            "The XML you provided was not well-formed or did not validate against our published schema".into(),
        )),
    }
}

/// The grants of the `x-amz-grant-*` headers: each is a comma-separated list of
/// `id="..."`, `emailAddress="..."` or `uri="..."` (quotes optional).
pub fn from_headers(dir: &Directory, headers: &[(Permission, Option<&str>)]) -> Result<Vec<Grant>, AclError> {
    let mut out = Vec::new();
    for (permission, value) in headers {
        let Some(value) = value else { continue };
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (kind, v) = item
                .split_once('=')
                .ok_or_else(|| AclError::InvalidArgument(format!("Invalid grant {item:?}")))?;
            let v = v.trim().trim_matches('"');
            let grantee = match kind.trim() {
                "id" => resolve(dir, Some(v), None, None)?,
                "emailAddress" => resolve(dir, None, Some(v), None)?,
                "uri" => resolve(dir, None, None, Some(v))?,
                other => return Err(AclError::InvalidArgument(format!("Invalid grantee type {other:?}"))),
            };
            out.push(grant(grantee, *permission));
        }
    }
    if out.len() > MAX_GRANTS {
        return Err(AclError::Malformed(format!("An ACL holds at most {MAX_GRANTS} grants")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_grant_what_aws_documents() {
        let a = Acl::canned("public-read", "111", "111").unwrap();
        assert!(a.allows(Who::Anonymous, Permission::Read));
        assert!(!a.allows(Who::Anonymous, Permission::Write));
        assert!(a.allows(Who::Account("111"), Permission::WriteAcp));
        assert!(!a.allows(Who::Account("222"), Permission::ReadAcp));
        let a = Acl::canned("public-read-write", "111", "111").unwrap();
        assert!(a.allows(Who::Anonymous, Permission::Write));
        let a = Acl::canned("authenticated-read", "111", "111").unwrap();
        assert!(!a.allows(Who::Anonymous, Permission::Read));
        assert!(a.allows(Who::Account("222"), Permission::Read));
        let a = Acl::canned("bucket-owner-read", "222", "111").unwrap();
        assert!(a.allows(Who::Account("111"), Permission::Read));
        assert!(!a.allows(Who::Account("111"), Permission::ReadAcp));
        let a = Acl::canned("bucket-owner-full-control", "222", "111").unwrap();
        assert!(a.allows(Who::Account("111"), Permission::WriteAcp));
        assert_eq!(Acl::canned("bucket-owner-full-control", "111", "111").unwrap(), Acl::private("111"));
        assert!(Acl::canned("aws-exec-read", "1", "1").is_err());
        assert_eq!(Acl::canned("nope", "1", "1").unwrap_err().code(), "InvalidArgument");
    }

    #[test]
    fn acls_round_trip_and_a_corrupt_one_grants_nothing() {
        let mut a = Acl::canned("public-read", "111", "111").unwrap();
        a.grants.push(grant(Grantee::LogDelivery, Permission::Write));
        assert_eq!(Acl::from_json(&a.to_json()), a);
        assert!(!Acl::from_json("{not json").allows(Who::Anonymous, Permission::Read));
    }
}
