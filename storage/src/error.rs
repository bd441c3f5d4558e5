//! The storage crate's one error type. The server maps each variant to one S3 error code.

use std::path::PathBuf;

/// Everything that can go wrong in `quarry-storage`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bucket name {0:?} is not valid: {1}")]
    InvalidBucketName(String, &'static str),
    #[error("object key is not valid: {0}")]
    InvalidKey(&'static str),
    #[error("bucket {0} does not exist")]
    NoSuchBucket(String),
    #[error("bucket {0} already exists")]
    BucketAlreadyExists(String),
    #[error("bucket {0} is not empty")]
    BucketNotEmpty(String),
    #[error("object {key} does not exist in bucket {bucket}")]
    NoSuchKey { bucket: String, key: String },
    #[error("the {} version is a delete marker ({version_id})", if *requested { "requested" } else { "current" })]
    DeleteMarker { version_id: String, requested: bool },
    #[error("version {version} of {key} does not exist")]
    NoSuchVersion { key: String, version: String },
    #[error("upload {0} does not exist")]
    NoSuchUpload(String),
    #[error("part {0} was not uploaded or its ETag does not match")]
    InvalidPart(u32),
    #[error("parts must be listed in ascending order")]
    InvalidPartOrder,
    #[error("part {part} is {size} bytes, smaller than the 5 MiB minimum for all but the last part")]
    EntityTooSmall { part: u32, size: u64 },
    #[error("part number {0} is outside 1..=10000")]
    InvalidPartNumber(i64),
    #[error("the object has {0} parts")]
    InvalidPartNumberForObject(u32),
    #[error("Content-MD5 is not a base64 MD5")]
    InvalidDigest,
    #[error("Content-MD5 does not match the body")]
    BadDigest,
    #[error("the object a conditional write names does not exist")]
    NoSuchKeyForCondition,
    #[error("precondition failed: {0}")]
    PreconditionFailed(&'static str),
    #[error("range not satisfiable for an object of {size} bytes")]
    InvalidRange { size: u64 },
    #[error("{algorithm} checksum mismatch: expected {expected}, computed {computed}")]
    BadChecksum {
        algorithm: &'static str,
        expected: String,
        computed: String,
    },
    #[error("checksum {0} is not valid for its algorithm")]
    InvalidChecksum(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("the request body ended early: {0}")]
    IncompleteBody(String),
    #[error("the object is larger than the {limit}-byte limit")]
    EntityTooLarge { limit: u64 },
    #[error("metadata is larger than the {limit}-byte limit")]
    MetadataTooLarge { limit: usize },
    #[error("drive set: {0}")]
    Drive(String),
    #[error("{op} reached {ok} drives; {need} are needed ({detail})")]
    Quorum {
        op: &'static str,
        ok: usize,
        need: usize,
        detail: String,
    },
    #[error(transparent)]
    Index(#[from] crate::index::EngineError),
    #[error("committing to the metadata index {path}: {source}")]
    IndexCommit {
        path: PathBuf,
        source: std::sync::Arc<crate::index::EngineError>,
    },
    #[error("{path}: corrupt metadata: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path and a verb to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            context,
            path: path.to_owned(),
            source,
        })
    }
}
