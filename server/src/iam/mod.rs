//! Identity and access: the IAM policy language ([`policy`]), ACLs ([`acl`]), what S3 requests are in its
//! terms ([`actions`]), the identity store of users, groups, keys and sessions
//! ([`identity`]), and the IAM/STS query APIs that manage it ([`api`]), whose requests are
//! signed with SigV4 ([`sigv4`]).

pub mod acl;
pub mod actions;
pub mod api;
pub mod identity;
pub mod policy;
pub mod sigv4;
