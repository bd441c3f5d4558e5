//! Which IAM action and resource ARN an S3 request is, as AWS documents them ("Actions,
//! resources, and condition keys for Amazon S3"): the name policies are written against.

/// The IAM action of S3 operation `op` (s3s's operation name). `version` says whether the
/// request names a version id, which turns object reads and deletes into their
/// `...Version` actions.
pub fn action(op: &str, version: bool) -> String {
    let a = match (op, version) {
        ("GetObject" | "HeadObject" | "SelectObjectContent", false) => "GetObject",
        ("GetObject" | "HeadObject", true) => "GetObjectVersion",
        ("DeleteObject", true) => "DeleteObjectVersion",
        ("GetObjectAcl", true) => "GetObjectVersionAcl",
        ("PutObjectAcl", true) => "PutObjectVersionAcl",
        ("GetObjectTagging", true) => "GetObjectVersionTagging",
        ("PutObjectTagging", true) => "PutObjectVersionTagging",
        ("DeleteObjectTagging", true) => "DeleteObjectVersionTagging",
        ("GetObjectAttributes", true) => "GetObjectVersionAttributes",
        ("CopyObject" | "CreateMultipartUpload" | "UploadPart" | "UploadPartCopy" | "CompleteMultipartUpload", _) => "PutObject",
        ("ListParts", _) => "ListMultipartUploadParts",
        ("ListObjects" | "ListObjectsV2" | "HeadBucket", _) => "ListBucket",
        ("ListObjectVersions", _) => "ListBucketVersions",
        ("ListMultipartUploads", _) => "ListBucketMultipartUploads",
        ("ListBuckets", _) => "ListAllMyBuckets",
        ("DeleteObjects", _) => "DeleteObject",
        ("GetBucketCors", _) => "GetBucketCORS",
        ("PutBucketCors", _) => "PutBucketCORS",
        ("DeleteBucketCors", _) => "PutBucketCORS",
        ("GetBucketEncryption", _) => "GetEncryptionConfiguration",
        ("PutBucketEncryption" | "DeleteBucketEncryption", _) => "PutEncryptionConfiguration",
        ("GetBucketLifecycleConfiguration", _) => "GetLifecycleConfiguration",
        ("PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle", _) => "PutLifecycleConfiguration",
        ("GetObjectLockConfiguration", _) => "GetBucketObjectLockConfiguration",
        ("PutObjectLockConfiguration", _) => "PutBucketObjectLockConfiguration",
        ("DeleteBucketTagging", _) => "PutBucketTagging",
        ("DeleteBucketOwnershipControls", _) => "PutBucketOwnershipControls",
        ("GetBucketNotificationConfiguration", _) => "GetBucketNotification",
        ("PutBucketNotificationConfiguration", _) => "PutBucketNotification",
        ("GetBucketAccelerateConfiguration", _) => "GetAccelerateConfiguration",
        ("PutBucketAccelerateConfiguration", _) => "PutAccelerateConfiguration",
        ("GetBucketReplication", _) => "GetReplicationConfiguration",
        ("PutBucketReplication" | "DeleteBucketReplication", _) => "PutReplicationConfiguration",
        // Most operations are their own action: GetBucketLocation, PutBucketPolicy,
        // GetBucketVersioning, PutObjectTagging, AbortMultipartUpload, CreateBucket...
        (other, _) => other,
    };
    format!("s3:{a}")
}

/// The ARN a request acts on: the bucket, an object, or every bucket (ListBuckets).
pub fn resource(bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
        (Some(b), None) => format!("arn:aws:s3:::{b}"),
        _ => "arn:aws:s3:::*".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_documented_actions() {
        for (op, version, want) in [
            ("GetObject", false, "s3:GetObject"),
            ("GetObject", true, "s3:GetObjectVersion"),
            ("HeadObject", false, "s3:GetObject"),
            ("ListObjectsV2", false, "s3:ListBucket"),
            ("ListObjects", false, "s3:ListBucket"),
            ("HeadBucket", false, "s3:ListBucket"),
            ("ListObjectVersions", false, "s3:ListBucketVersions"),
            ("ListMultipartUploads", false, "s3:ListBucketMultipartUploads"),
            ("ListParts", false, "s3:ListMultipartUploadParts"),
            ("UploadPart", false, "s3:PutObject"),
            ("CompleteMultipartUpload", false, "s3:PutObject"),
            ("DeleteObject", true, "s3:DeleteObjectVersion"),
            ("PutObjectTagging", false, "s3:PutObjectTagging"),
            ("PutObjectTagging", true, "s3:PutObjectVersionTagging"),
            ("GetBucketPolicy", false, "s3:GetBucketPolicy"),
            ("GetBucketPolicyStatus", false, "s3:GetBucketPolicyStatus"),
            ("ListBuckets", false, "s3:ListAllMyBuckets"),
            ("SelectObjectContent", false, "s3:GetObject"),
            ("AbortMultipartUpload", false, "s3:AbortMultipartUpload"),
        ] {
            assert_eq!(action(op, version), want, "{op} version={version}");
        }
        assert_eq!(resource(Some("b"), Some("a/b.txt")), "arn:aws:s3:::b/a/b.txt");
        assert_eq!(resource(Some("b"), None), "arn:aws:s3:::b");
    }
}
