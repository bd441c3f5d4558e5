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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// The `Expires` header exactly as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_redirect_location: Option<String>,
    /// `x-amz-meta-*` pairs, names lowercased, values as sent (UTF-8 allowed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Object tags (S3 tagging), key to value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
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
    /// Whether no attribute is set (the record then leaves `attrs` out).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Bytes the user metadata takes, as S3 counts it against its 2 KiB limit.
    pub fn user_metadata_len(&self) -> usize {
        self.user.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

/// A time stored as `[seconds, nanoseconds]` since the epoch. Records written before this
/// form hold serde's default `{"secs_since_epoch":..,"nanos_since_epoch":..}`; both are read.
pub(crate) mod compact_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        serde::Serialize::serialize(&(d.as_secs(), d.subsec_nanos()), s)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Pair(u64, u32),
        Std(SystemTime),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        match Either::deserialize(d)? {
            Either::Pair(secs, nanos) if nanos < 1_000_000_000 => UNIX_EPOCH
                .checked_add(Duration::new(secs, nanos))
                .ok_or_else(|| serde::de::Error::custom("time out of range")),
            Either::Pair(..) => Err(serde::de::Error::custom("nanoseconds out of range")),
            Either::Std(t) => Ok(t),
        }
    }
}

/// One part of an object: a whole single-PUT object is one part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub number: u32,
    pub size: u64,
    /// Hex MD5 of the part.
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// The data file holding the part's bytes; `None` when the bytes are inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_id: Option<String>,
}

/// One version of an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// `None` is the "null" version of an unversioned bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub size: u64,
    /// ETag without quotes: hex MD5, or `md5-N` for a multipart object.
    pub etag: String,
    #[serde(with = "compact_time")]
    pub last_modified: SystemTime,
    #[serde(default, skip_serializing_if = "ObjectAttrs::is_empty")]
    pub attrs: ObjectAttrs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// Whether the object was assembled by CompleteMultipartUpload.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multipart: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartMeta>,
    /// Whether the object's bytes are inline: `Some(0)` in the index (the bytes are the
    /// version's `Inline` row); in a pre-index metadata file, their offset in its blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

    /// A record as the first index format wrote it (every field, nulls included, and serde's
    /// default `SystemTime`) still reads as the same version.
    #[test]
    fn records_in_the_first_form_still_read() {
        let old = r#"{"version_id":null,"size":5,"etag":"5d41402abc4b2a76b9719d911017c592","last_modified":{"secs_since_epoch":1700000000,"nanos_since_epoch":123456789},"attrs":{"content_type":"text/plain","content_encoding":null,"content_disposition":null,"content_language":null,"cache_control":null,"expires":null,"website_redirect_location":null,"user":{"k":"välue"},"storage_class":null,"tags":{}},"checksum":null,"multipart":false,"parts":[{"number":1,"size":5,"etag":"5d41402abc4b2a76b9719d911017c592","checksum":null,"data_id":null}],"inline_at":0}"#;
        let m: ObjectMeta = serde_json::from_str(old).unwrap();
        assert_eq!(m, sample(true).versions[0]);
    }

    #[test]
    fn records_leave_out_what_is_unset() {
        let mut m = sample(true).versions.remove(0);
        m.attrs = ObjectAttrs::default();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"size":5,"etag":"5d41402abc4b2a76b9719d911017c592","last_modified":[1700000000,123456789],"parts":[{"number":1,"size":5,"etag":"5d41402abc4b2a76b9719d911017c592"}],"inline_at":0}"#
        );
        assert_eq!(serde_json::from_str::<ObjectMeta>(&json).unwrap(), m);
        // A full record round-trips too.
        let full = sample(false).versions.remove(0);
        assert_eq!(
            serde_json::from_slice::<ObjectMeta>(&serde_json::to_vec(&full).unwrap()).unwrap(),
            full
        );
        // Nanoseconds out of range are an error, not a panic.
        let bad = json.replace("123456789", "1000000000");
        assert!(serde_json::from_str::<ObjectMeta>(&bad).is_err());
        let bad = json.replace("1700000000", &u64::MAX.to_string());
        assert!(serde_json::from_str::<ObjectMeta>(&bad).is_err());
    }

    #[test]
    fn inline_range_checked() {
        let rec = sample(true);
        let enc = MetaFile::encode(&rec, b"hi");
        assert!(MetaFile::decode(enc.into(), Path::new("x")).is_err());
    }
}
