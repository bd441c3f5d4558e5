//! Identity and access: the IAM policy language ([`policy`]) and what S3 requests are in
//! its terms ([`actions`]). Bucket policies are enforced for anonymous requests; users,
//! groups, keys and the IAM API build on these (issue 6, in progress).

pub mod actions;
pub mod policy;
