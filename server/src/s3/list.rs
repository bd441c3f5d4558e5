//! ListObjects (v1 and v2) and ListObjectVersions over the store's ordered index.

use super::Quarry;
use super::convert;
use super::error::StorageResultExt;
use quarry_storage::{ListItem, ListPage, ListQuery, ObjectMeta, VersionItem};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use std::sync::Arc;

const MAX_KEYS: i32 = 1000;

fn page_size(max_keys: Option<i32>) -> S3Result<usize> {
    match max_keys {
        None => Ok(MAX_KEYS as usize),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys cannot be negative")),
        Some(n) => Ok(n.min(MAX_KEYS) as usize),
    }
}

pub(super) fn encoder(encoding_type: Option<&EncodingType>) -> S3Result<fn(&str) -> String> {
    match encoding_type.map(EncodingType::as_str) {
        None => Ok(str::to_owned),
        Some(e) if e.eq_ignore_ascii_case("url") => Ok(convert::url_encode),
        Some(_) => Err(s3_error!(InvalidArgument, "Invalid Encoding Method specified in Request")),
    }
}

/// Who owns the objects of a listing: their writer when recorded, else the bucket owner.
pub(crate) struct Owners {
    dir: Arc<crate::iam::identity::Directory>,
    bucket_owner: String,
}

impl Owners {
    pub(crate) fn new(q: &Quarry, bucket: &quarry_storage::BucketName) -> S3Result<Owners> {
        Ok(Owners {
            dir: q.iam.directory(),
            bucket_owner: q.bucket_owner(bucket)?,
        })
    }

    pub(crate) fn of(&self, account: Option<&str>) -> Owner {
        convert::owner(&self.dir.account_or_id(account.unwrap_or(&self.bucket_owner)))
    }
}

fn object_entry(key: String, m: &ObjectMeta, owner: Option<&Owners>) -> Object {
    Object {
        key: Some(key),
        e_tag: Some(convert::etag(m)),
        last_modified: Some(convert::ts(m.last_modified)),
        size: Some(m.size as i64),
        storage_class: Some(ObjectStorageClass::from(
            m.attrs.storage_class.clone().unwrap_or_else(|| "STANDARD".into()),
        )),
        owner: owner.map(|o| o.of(m.attrs.owner.as_deref())),
        checksum_algorithm: m.checksum.as_ref().map(|c| vec![convert::wire_algorithm(c.algorithm)]),
        checksum_type: m.checksum.as_ref().map(|c| convert::wire_kind(c.kind)),
        ..Default::default()
    }
}

struct Split {
    objects: Vec<Object>,
    prefixes: Vec<CommonPrefix>,
}

fn split(page: &ListPage<Arc<ObjectMeta>>, enc: fn(&str) -> String, owner: Option<&Owners>) -> Split {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    for item in &page.items {
        match item {
            ListItem::Object(k, m) => objects.push(object_entry(enc(k), m, owner)),
            ListItem::CommonPrefix(p) => prefixes.push(CommonPrefix { prefix: Some(enc(p)) }),
        }
    }
    Split { objects, prefixes }
}

pub(super) async fn list_objects(q: &Quarry, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let enc = encoder(input.encoding_type.as_ref())?;
    let max = page_size(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let query = ListQuery {
        prefix: &prefix,
        delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()),
        start_after: input.marker.as_deref().filter(|m| !m.is_empty()),
        max,
    };
    let page = q.store.list_objects(&bucket, &query).s3()?;
    let next_marker = page.next_marker().map(enc);
    let owners = Owners::new(q, &bucket)?;
    let s = split(&page, enc, Some(&owners));
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket),
        // AWS leaves a version 1 listing's own Prefix unencoded whatever the encoding
        // type (the SDKs decode Delimiter, Marker, NextMarker and the keys, not Prefix).
        prefix: Some(input.prefix.unwrap_or_default()),
        marker: Some(input.marker.as_deref().map(enc).unwrap_or_default()),
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS)),
        is_truncated: Some(page.truncated),
        next_marker,
        delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()).map(enc),
        encoding_type: input.encoding_type,
        contents: (!s.objects.is_empty()).then_some(s.objects),
        common_prefixes: (!s.prefixes.is_empty()).then_some(s.prefixes),
        ..Default::default()
    }))
}

fn encode_token(marker: &str) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(marker.as_bytes())
}

fn decode_token(token: &str) -> S3Result<String> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(token.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
}

pub(super) async fn list_objects_v2(q: &Quarry, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let enc = encoder(input.encoding_type.as_ref())?;
    let max = page_size(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let resume = match &input.continuation_token {
        Some(t) => Some(decode_token(t)?),
        None => input.start_after.clone().filter(|s| !s.is_empty()),
    };
    let query = ListQuery {
        prefix: &prefix,
        delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()),
        start_after: resume.as_deref(),
        max,
    };
    let page = q.store.list_objects(&bucket, &query).s3()?;
    let next = page.next_marker().map(encode_token);
    let owners = if input.fetch_owner.unwrap_or(false) {
        Some(Owners::new(q, &bucket)?)
    } else {
        None
    };
    let s = split(&page, enc, owners.as_ref());
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(input.prefix.as_deref().map(enc).unwrap_or_default()),
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS)),
        key_count: Some(page.items.len() as i32),
        continuation_token: input.continuation_token,
        next_continuation_token: next,
        is_truncated: Some(page.truncated),
        delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()).map(enc),
        encoding_type: input.encoding_type,
        start_after: input.start_after.as_deref().map(enc),
        contents: (!s.objects.is_empty()).then_some(s.objects),
        common_prefixes: (!s.prefixes.is_empty()).then_some(s.prefixes),
        ..Default::default()
    }))
}

/// ListObjectVersions: every version and delete marker, keys in order and each key's
/// versions newest first, paged by key marker and version id marker.
pub(super) async fn list_object_versions(
    q: &Quarry,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let enc = encoder(input.encoding_type.as_ref())?;
    let max = page_size(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let key_marker = input.key_marker.as_deref().filter(|m| !m.is_empty());
    let version_marker = match input.version_id_marker.as_deref().filter(|m| !m.is_empty()) {
        Some(_) if key_marker.is_none() => {
            return Err(s3_error!(
                InvalidArgument,
                "A version-id marker cannot be specified without a key marker."
            ));
        }
        v => convert::version(v)?,
    };
    let query = ListQuery {
        prefix: &prefix,
        delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()),
        start_after: key_marker,
        max,
    };
    let page = q.store.list_versions(&bucket, &query, version_marker.as_ref()).s3()?;
    let owners = Owners::new(q, &bucket)?;
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    let mut prefixes = Vec::new();
    for item in &page.items {
        match item {
            VersionItem::Version { key, meta: m, latest } if m.delete_marker => markers.push(DeleteMarkerEntry {
                key: Some(enc(key)),
                version_id: Some(m.version_wire().to_owned()),
                is_latest: Some(*latest),
                last_modified: Some(convert::ts(m.last_modified)),
                owner: Some(owners.of(m.attrs.owner.as_deref())),
            }),
            VersionItem::Version { key, meta: m, latest } => versions.push(ObjectVersion {
                key: Some(enc(key)),
                version_id: Some(m.version_wire().to_owned()),
                is_latest: Some(*latest),
                e_tag: Some(convert::etag(m)),
                last_modified: Some(convert::ts(m.last_modified)),
                size: Some(m.size as i64),
                storage_class: Some(ObjectVersionStorageClass::from("STANDARD".to_owned())),
                owner: Some(owners.of(m.attrs.owner.as_deref())),
                checksum_algorithm: m.checksum.as_ref().map(|c| vec![convert::wire_algorithm(c.algorithm)]),
                checksum_type: m.checksum.as_ref().map(|c| convert::wire_kind(c.kind)),
                ..Default::default()
            }),
            VersionItem::CommonPrefix(p) => prefixes.push(CommonPrefix { prefix: Some(enc(p)) }),
        }
    }
    let next = page.next_markers();
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(input.bucket),
        prefix: Some(input.prefix.as_deref().map(enc).unwrap_or_default()),
        key_marker: Some(input.key_marker.as_deref().map(enc).unwrap_or_default()),
        version_id_marker: Some(input.version_id_marker.unwrap_or_default()),
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS)),
        delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()).map(enc),
        encoding_type: input.encoding_type,
        is_truncated: Some(page.truncated),
        next_key_marker: next.as_ref().map(|(k, _)| enc(k)),
        next_version_id_marker: next.and_then(|(_, v)| v),
        versions: (!versions.is_empty()).then_some(versions),
        delete_markers: (!markers.is_empty()).then_some(markers),
        common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
        ..Default::default()
    }))
}
