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
        Self { access_key, secret: SecretKey::from(secret) }
    }
}

#[async_trait::async_trait]
impl S3Auth for RootAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            Ok(self.secret.clone())
        } else {
            Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records."))
        }
    }
}
