//! Credentials: who may sign requests. Today one root key pair; IAM users come later.

use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

/// The root user's key pair.
pub struct RootAuth {
    access_key: String,
    secret: SecretKey,
}

impl RootAuth {
    /// Accept signatures made with this key pair.
    pub fn new(access_key: String, secret: String) -> Self {
        Self {
            access_key,
            secret: SecretKey::from(secret),
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for RootAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            Ok(self.secret.clone())
        } else {
            Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            ))
        }
    }
}

/// Longest lifetime of a presigned SigV4 URL (seven days), as in S3.
const MAX_PRESIGNED_EXPIRES: u64 = 604_800;

/// Authorisation: every request must be signed by a known key (anonymous access arrives
/// with bucket policies), and presigned URLs may not outlive S3's seven-day limit.
pub struct RootAccess;

#[async_trait::async_trait]
impl s3s::access::S3Access for RootAccess {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        if let Some(q) = cx.uri().query() {
            for pair in q.split('&') {
                if let Some(v) = pair.strip_prefix("X-Amz-Expires=") {
                    match v.parse::<u64>() {
                        Ok(secs) if (1..=MAX_PRESIGNED_EXPIRES).contains(&secs) => {}
                        _ => {
                            return Err(s3_error!(
                                AuthorizationQueryParametersError,
                                "X-Amz-Expires must be less than a week (in seconds) that is; 604800"
                            ));
                        }
                    }
                }
            }
        }
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied, "Access Denied")),
        }
    }
}
