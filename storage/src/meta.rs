//! Object metadata and its on-disk encoding (see `storage/FORMAT.md`).
//!
//! [`ObjectMeta`] is what the index stores per version (`versions.rs`). Sets written before
//! the index held one metadata file per key: a [`KeyRecord`] (the key and its versions,
//! newest first) and the inline bytes, ending with a CRC32C of everything before it; the
//! upgrade (`migrate.rs`) reads them with [`MetaFile::decode`].

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

const MAGIC: &[u8; 6] = b"QMETA\x01";

/// Attributes a client sets on an object and gets back on GET/HEAD.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAttrs {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// The `Expires` header exactly as sent.
    pub expires: Option<String>,
    pub website_redirect_location: Option<String>,
    /// `x-amz-meta-*` pairs, names lowercased, values as sent (UTF-8 allowed).
    pub user: BTreeMap<String, String>,
    pub storage_class: Option<String>,
    /// Object tags (S3 tagging), key to value.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The account that owns the object, when it is not the bucket's owner (a writer's
    /// object in a bucket whose Object Ownership is `ObjectWriter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The object's access control list, as the server wrote it (absent: private to
    /// the owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
}

impl ObjectAttrs {
    /// Bytes the user metadata takes, as S3 counts it against its 2 KiB limit.
    pub fn user_metadata_len(&self) -> usize {
        self.user.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

/// One part of an object: a whole single-PUT object is one part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub number: u32,
    pub size: u64,
    /// Hex MD5 of the part.
    pub etag: String,
    pub checksum: Option<Checksum>,
    /// The data file holding the part's bytes; `None` when the bytes are inline.
    pub data_id: Option<String>,
}

/// One version of an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// `None` is the "null" version of an unversioned bucket.
    pub version_id: Option<String>,
    pub size: u64,
    /// ETag without quotes: hex MD5, or `md5-N` for a multipart object.
    pub etag: String,
    pub last_modified: SystemTime,
    pub attrs: ObjectAttrs,
    pub checksum: Option<Checksum>,
    /// Whether the object was assembled by CompleteMultipartUpload.
    pub multipart: bool,
    pub parts: Vec<PartMeta>,
    /// Whether the object's bytes are inline: `Some(0)` in the index (the bytes are the
    /// version's `Inline` row); in a pre-index metadata file, their offset in its blob.
    pub inline_at: Option<u64>,
    /// A delete marker: no data; makes the key read as absent while it is the latest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_marker: bool,
    /// The multipart upload this version was completed from (so that a retried
    /// CompleteMultipartUpload of the same upload answers as the first did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// The version's order stamp among its key's versions (higher is newer): part of its
    /// index key, not of the stored record.
    #[serde(skip)]
    pub(crate) order: u64,
}

/// A bucket's versioning state (S3's three states: a bucket never returns to unversioned).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

impl ObjectMeta {
    /// The version id as S3 shows it (`null` for the null version).
    pub fn version_wire(&self) -> &str {
        self.version_id.as_deref().unwrap_or("null")
    }

    /// Data files this version references.
    pub fn data_ids(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| p.data_id.as_deref())
    }
}

/// Everything stored for one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key: String,
    /// Newest first. Empty never reaches disk: the file is removed instead.
    pub versions: Vec<ObjectMeta>,
}

/// A decoded metadata file: the record and the inline blob.
#[derive(Debug)]
pub struct MetaFile {
    pub record: KeyRecord,
    pub blob: bytes::Bytes,
}

impl MetaFile {
    /// Encode to the on-disk form (what sets before the index wrote; the upgrade's tests
    /// build such sets).
    #[cfg(test)]
    pub fn encode(record: &KeyRecord, blob: &[u8]) -> Vec<u8> {
        let json = serde_json::to_vec(record).expect("metadata always serialises");
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + json.len() + blob.len() + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&u32::try_from(json.len()).expect("metadata under 4 GiB").to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(blob);
        let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &out) as u32;
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decode and verify a metadata file's bytes.
    pub fn decode(bytes: bytes::Bytes, path: &Path) -> Result<Self> {
        let (record, blob) = verify(&bytes, path)?;
        let blob = bytes.slice(blob);
        Ok(Self { record, blob })
    }
}

/// Check magic, length and CRC; parse the record; return it with the blob's byte range.
fn verify(bytes: &[u8], path: &Path) -> Result<(KeyRecord, std::ops::Range<usize>)> {
    let corrupt = |reason: &str| Error::Corrupt {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("bad magic or truncated"));
    }
    let body_end = bytes.len() - 4;
    let stored = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &bytes[..body_end]) as u32;
    if stored != crc {
        return Err(corrupt("checksum mismatch"));
    }
    let len_at = MAGIC.len();
    let json_len = u32::from_le_bytes(bytes[len_at..len_at + 4].try_into().expect("4 bytes")) as usize;
    let json_start = len_at + 4;
    let json_end = json_start
        .checked_add(json_len)
        .filter(|e| *e <= body_end)
        .ok_or_else(|| corrupt("length out of range"))?;
    let record: KeyRecord = serde_json::from_slice(&bytes[json_start..json_end]).map_err(|e| corrupt(&e.to_string()))?;
    let blob_len = (body_end - json_end) as u64;
    for v in &record.versions {
        if let Some(at) = v.inline_at
            && at.checked_add(v.size).is_none_or(|end| end > blob_len)
        {
            return Err(corrupt("inline data out of range"));
        }
    }
    Ok((record, json_end..body_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(inline: bool) -> KeyRecord {
        KeyRecord {
            key: "a/../b\u{1}ключ".into(),
            versions: vec![ObjectMeta {
                upload_id: None,
                version_id: None,
                size: 5,
                etag: "5d41402abc4b2a76b9719d911017c592".into(),
                last_modified: SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(1_700_000_000_123_456_789),
                attrs: ObjectAttrs {
                    content_type: Some("text/plain".into()),
                    user: [("k".into(), "välue".into())].into(),
                    ..Default::default()
                },
                checksum: None,
                multipart: false,
                parts: vec![PartMeta {
                    number: 1,
                    size: 5,
                    etag: "5d41402abc4b2a76b9719d911017c592".into(),
                    checksum: None,
                    data_id: (!inline).then(|| "abc".into()),
                }],
                inline_at: inline.then_some(0),
                delete_marker: false,
                order: 0,
            }],
        }
    }

    #[test]
    fn round_trip() {
        let rec = sample(true);
        let enc = MetaFile::encode(&rec, b"hello");
        let dec = MetaFile::decode(enc.into(), Path::new("x")).unwrap();
        assert_eq!(dec.record, rec);
        assert_eq!(&dec.blob[..], b"hello");
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let enc = MetaFile::encode(&sample(true), b"hello");
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x40;
            assert!(MetaFile::decode(bad.into(), Path::new("x")).is_err(), "flip at {i} not detected");
        }
        for cut in 0..enc.len() {
            assert!(MetaFile::decode(enc[..cut].to_vec().into(), Path::new("x")).is_err());
        }
    }

    #[test]
    fn inline_range_checked() {
        let rec = sample(true);
        let enc = MetaFile::encode(&rec, b"hi");
        assert!(MetaFile::decode(enc.into(), Path::new("x")).is_err());
    }
}
