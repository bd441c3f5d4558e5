//! Object tagging: PutObjectTagging, GetObjectTagging, DeleteObjectTagging, and the
//! `x-amz-tagging` header on PutObject, CreateMultipartUpload and CopyObject. Limits as in
//! S3: at most 10 tags, keys of 1-128 and values of 0-256 characters, unique keys.

use super::Quarry;
use super::convert;
use super::error::StorageResultExt;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use std::collections::BTreeMap;

const MAX_TAGS: usize = 10;

fn invalid(msg: &str) -> s3s::S3Error {
    s3_error!(InvalidTag, "{msg}")
}

/// Validate tag pairs into a map.
pub(crate) fn tags_from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> S3Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    for (k, v) in pairs {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(invalid("The TagKey you have provided is invalid"));
        }
        if v.chars().count() > 256 {
            return Err(invalid("The TagValue you have provided is invalid"));
        }
        if tags.insert(k, v).is_some() {
            return Err(invalid("Cannot provide multiple Tags with the same key"));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(invalid("Object tags cannot be greater than 10"));
    }
    Ok(tags)
}

fn percent_decode(s: &str) -> S3Result<String> {
    let bytes = super::convert::form_decode(s, false).ok_or_else(|| invalid("The x-amz-tagging header is not URL-encoded correctly"))?;
    String::from_utf8(bytes).map_err(|_| invalid("The x-amz-tagging header is not UTF-8"))
}

/// Parse an `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded).
pub(crate) fn parse_header(h: Option<&str>) -> S3Result<BTreeMap<String, String>> {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let pairs: Vec<(String, String)> = h
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect::<S3Result<_>>()?;
    tags_from_pairs(pairs)
}

pub(super) async fn put(q: &Quarry, req: S3Request<PutObjectTaggingInput>) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let i = req.input;
    let version = convert::version(i.version_id.as_deref())?;
    let tags = tags_from_pairs(
        i.tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())),
    )?;
    let bucket = convert::bucket(&i.bucket)?;
    let meta = q
        .store
        .update_attrs(&bucket, &convert::key(&i.key)?, version.as_ref(), move |a| a.tags = tags)
        .await
        .s3()?;
    Ok(S3Response::new(PutObjectTaggingOutput {
        version_id: convert::version_header(&q.store, &bucket, &meta),
    }))
}

pub(super) async fn get(q: &Quarry, req: S3Request<GetObjectTaggingInput>) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let i = req.input;
    let version = convert::version(i.version_id.as_deref())?;
    let bucket = convert::bucket(&i.bucket)?;
    let meta = q.store.head_object(&bucket, &convert::key(&i.key)?, version.as_ref()).s3()?;
    let tag_set = meta
        .attrs
        .tags
        .iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect();
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set,
        version_id: convert::version_header(&q.store, &bucket, &meta),
    }))
}

pub(super) async fn delete(q: &Quarry, req: S3Request<DeleteObjectTaggingInput>) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let i = req.input;
    let version = convert::version(i.version_id.as_deref())?;
    let bucket = convert::bucket(&i.bucket)?;
    let meta = q
        .store
        .update_attrs(&bucket, &convert::key(&i.key)?, version.as_ref(), |a| a.tags.clear())
        .await
        .s3()?;
    Ok(S3Response::with_status(
        DeleteObjectTaggingOutput {
            version_id: convert::version_header(&q.store, &bucket, &meta),
        },
        http::StatusCode::NO_CONTENT,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_and_limits() {
        let t = parse_header(Some("a=1&b%20c=d%2Fe&empty=&plus=x+y")).unwrap();
        assert_eq!(t.get("b c").map(String::as_str), Some("d/e"));
        assert_eq!(t.get("empty").map(String::as_str), Some(""));
        assert_eq!(t.get("plus").map(String::as_str), Some("x y"));
        assert!(parse_header(Some("a=1&a=2")).is_err());
        assert!(parse_header(Some("=v")).is_err());
        assert!(parse_header(Some("k=%zz")).is_err());
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(parse_header(Some(&eleven.join("&"))).is_err());
        assert!(parse_header(None).unwrap().is_empty());
    }
}
