//! `quarry-storage`: the bytes-on-drives layer of Quarry.
//!
//! It owns buckets, objects (data and metadata, every version), multipart uploads, listing
//! and healing, and knows nothing of HTTP or S3 wire types: the server adapts between the
//! two. A store is an erasure set of 1 to 16 drives: objects are cut into blocks, each
//! encoded into data and parity shards ([`erasure`], systematic, so healthy reads never
//! decode) written one shard file per drive with a checksum per 4 KiB page ([`bitrot`],
//! [`shard_io`]), through an [`io`] engine (io_uring, or std). Metadata is replicated on
//! every drive and committed by quorum; [`drives`] names and checks the drives. The format
//! is specified in `storage/FORMAT.md`.
//!
//! Main types: [`Store`] (open, buckets, objects, uploads), [`StagedData`] (a body written
//! but not yet visible), [`ObjectMeta`] (one version's metadata), [`ListQuery`]/[`ListPage`].
//!
//! ```no_run
//! # async fn demo() -> quarry_storage::Result<()> {
//! use quarry_storage::{BucketName, ObjectKey, ObjectAttrs, ReadRange, Store, StoreOptions, WriteCondition};
//! let store = Store::open("./data", StoreOptions::default()).await?;
//! let bucket = BucketName::new("photos")?;
//! store.create_bucket(&bucket).await?;
//! let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"hi"))]);
//! let staged = store.stage(&bucket, body, None, Some(2)).await?;
//! let key = ObjectKey::new("a/b.txt")?;
//! store.commit_object(&bucket, &key, staged, ObjectAttrs::default(), &WriteCondition::default()).await?;
//! let reader = store.get_object(&bucket, &key, None, ReadRange::All).await?;
//! assert_eq!(reader.meta.size, 2);
//! # Ok(()) }
//! ```

pub mod bitrot;
mod buckets;
mod checksum;
mod config;
pub mod drives;
pub mod erasure;
mod error;
mod fsio;
mod heal;
pub mod index;
pub mod io;
mod listing;
mod meta;
mod migrate;
mod multipart;
mod names;
mod object;
#[cfg(test)]
mod power_loss;
pub mod shard_io;
mod store;
mod versions;

pub use buckets::{BucketConfig, BucketInfo};
pub use checksum::{BodyHasher, Checksum, ChecksumAlgorithm, ChecksumType, Hasher, combine_parts, hex, multipart_etag};
pub use error::{Error, Result};
pub use heal::HealReport;
pub use io::{EngineKind, IoEngine};
pub use listing::{ListItem, ListPage, ListQuery};
pub use meta::{ObjectAttrs, ObjectMeta, PartMeta, Versioning};
pub use multipart::{CompletedPart, MIN_PART_SIZE, PartRecord, UploadInfo, UploadPage, UploadQuery};
pub use names::{BucketName, MAX_KEY_LEN, ObjectKey, PartNumber, UploadId, VersionId};
pub use object::{
    BodyStream, DeleteCondition, DeleteOutcome, ObjectReader, ReadRange, StagedData, VersionItem, VersionPage, WriteCondition,
};
pub use store::{KeyEntry, Store, StoreOptions};
