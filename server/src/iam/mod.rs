//! Identity and access: the IAM policy language ([`policy`]). Users, groups, keys and the
//! IAM API that manages them build on it (issue 6, in progress).

pub mod policy;
