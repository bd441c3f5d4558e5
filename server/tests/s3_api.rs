//! The S3 API driven by aws-sdk-s3 against a real `quarry` process.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective, ObjectIdentifier,
};
use common::{Server, bytes, code, status};

async fn read(c: &aws_sdk_s3::Client, b: &str, k: &str) -> Vec<u8> {
    c.get_object()
        .bucket(b)
        .key(k)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

#[tokio::test]
async fn bucket_lifecycle() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("alpha").send().await.unwrap();
    // us-east-1's legacy (as on AWS): re-creating one's own bucket answers 200.
    c.create_bucket().bucket("alpha").send().await.unwrap();
    let e = c.create_bucket().bucket("Bad_Name").send().await.unwrap_err();
    assert_eq!(status(&e), 400);
    c.head_bucket().bucket("alpha").send().await.unwrap();
    let e = c.head_bucket().bucket("missing").send().await.unwrap_err();
    assert_eq!(status(&e), 404);
    let names: Vec<_> = c
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["alpha"]);
    let loc = c.get_bucket_location().bucket("alpha").send().await.unwrap();
    assert!(loc.location_constraint().is_none_or(|l| l.as_str().is_empty()));
    c.put_object()
        .bucket("alpha")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let e = c.delete_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("BucketNotEmpty", 409));
    c.delete_object().bucket("alpha").key("k").send().await.unwrap();
    c.delete_bucket().bucket("alpha").send().await.unwrap();
    let e = c.delete_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("NoSuchBucket", 404));
}

#[tokio::test]
async fn object_round_trip_with_metadata_and_ranges() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("objs").send().await.unwrap();
    let body = bytes(1, 300_000);
    let put = c
        .put_object()
        .bucket("objs")
        .key("dir/file.bin")
        .body(ByteStream::from(body.clone()))
        .content_type("application/x-test")
        .cache_control("max-age=60")
        .content_disposition("attachment")
        .metadata("color", "blue")
        .metadata("unicode", "caf=?UTF-8?B?w6k=?=")
        .send()
        .await
        .unwrap();
    let md5 = format!("\"{}\"", quarry_storage::hex(&md5_of(&body)));
    assert_eq!(put.e_tag(), Some(md5.as_str()));
    let got = c.get_object().bucket("objs").key("dir/file.bin").send().await.unwrap();
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(got.metadata().unwrap().get("color").map(String::as_str), Some("blue"));
    assert_eq!(got.e_tag(), Some(md5.as_str()));
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), &body[..]);

    for (range, want) in [
        ("bytes=10-19", &body[10..20]),
        ("bytes=299990-", &body[299_990..]),
        ("bytes=-5", &body[body.len() - 5..]),
    ] {
        let r = c.get_object().bucket("objs").key("dir/file.bin").range(range).send().await.unwrap();
        assert!(r.content_range().unwrap().ends_with("/300000"));
        assert_eq!(r.body.collect().await.unwrap().into_bytes().as_ref(), want, "{range}");
    }
    let e = c
        .get_object()
        .bucket("objs")
        .key("dir/file.bin")
        .range("bytes=300000-")
        .send()
        .await
        .unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("InvalidRange", 416));

    let h = c.head_object().bucket("objs").key("dir/file.bin").send().await.unwrap();
    assert_eq!(h.content_length(), Some(300_000));
    let e = c.head_object().bucket("objs").key("nope").send().await.unwrap_err();
    assert_eq!(status(&e), 404);
    let e = c.get_object().bucket("objs").key("nope").send().await.unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("NoSuchKey", 404));

    // Conditional reads, with S3's precedence.
    let e = c
        .get_object()
        .bucket("objs")
        .key("dir/file.bin")
        .if_none_match(&md5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 304);
    let e = c
        .get_object()
        .bucket("objs")
        .key("dir/file.bin")
        .if_match("\"0000\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("PreconditionFailed", 412));
    let past = aws_sdk_s3::primitives::DateTime::from_secs(1_000_000_000);
    let future = aws_sdk_s3::primitives::DateTime::from_secs(4_000_000_000);
    c.get_object()
        .bucket("objs")
        .key("dir/file.bin")
        .if_match(&md5)
        .if_unmodified_since(past)
        .send()
        .await
        .unwrap();
    let e = c
        .get_object()
        .bucket("objs")
        .key("dir/file.bin")
        .if_modified_since(future)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 304);
    let e = c
        .head_object()
        .bucket("objs")
        .key("dir/file.bin")
        .if_unmodified_since(past)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 412);

    // Overwrite and delete.
    c.put_object()
        .bucket("objs")
        .key("dir/file.bin")
        .body(ByteStream::from_static(b"small"))
        .send()
        .await
        .unwrap();
    assert_eq!(read(&c, "objs", "dir/file.bin").await, b"small");
    c.delete_object().bucket("objs").key("dir/file.bin").send().await.unwrap();
    c.delete_object().bucket("objs").key("dir/file.bin").send().await.unwrap();
    let e = c.get_object().bucket("objs").key("dir/file.bin").send().await.unwrap_err();
    assert_eq!(status(&e), 404);
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn md5_of(b: &[u8]) -> [u8; 16] {
    let mut h = quarry_storage::BodyHasher::new(None);
    h.update(b);
    h.finalize().0
}

#[tokio::test]
async fn conditional_writes() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("cond").send().await.unwrap();
    c.put_object()
        .bucket("cond")
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"1"))
        .send()
        .await
        .unwrap();
    let e = c
        .put_object()
        .bucket("cond")
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"2"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 412);
    let e = c
        .put_object()
        .bucket("cond")
        .key("k")
        .if_match("\"ffff\"")
        .body(ByteStream::from_static(b"2"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 412);
    let etag = c
        .head_object()
        .bucket("cond")
        .key("k")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    c.put_object()
        .bucket("cond")
        .key("k")
        .if_match(&etag)
        .body(ByteStream::from_static(b"3"))
        .send()
        .await
        .unwrap();
    assert_eq!(read(&c, "cond", "k").await, b"3");
    let e = c
        .put_object()
        .bucket("cond")
        .key("absent")
        .if_match(&etag)
        .body(ByteStream::from_static(b"4"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 404);
}

#[tokio::test]
async fn hostile_keys_stay_inside_and_round_trip() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("keys").send().await.unwrap();
    let keys = [
        "a",
        "a/b",
        "a/../b",
        "../../../../etc/passwd",
        "./",
        "//",
        "trailing/",
        "ключ/ü",
        "100%",
        "sp ace",
        "ctl\u{1}x",
        "a+b=c&d",
        "~tilde",
    ];
    for (i, k) in keys.iter().enumerate() {
        c.put_object()
            .bucket("keys")
            .key(*k)
            .body(ByteStream::from(bytes(i as u64, 10 + i)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{k:?}: {e:?}"));
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(read(&c, "keys", k).await, bytes(i as u64, 10 + i), "{k:?}");
    }
    let mut want: Vec<&str> = keys.to_vec();
    want.sort();
    // A control character cannot travel in XML 1.0, so list as clients do: URL-encoded.
    let r = c
        .list_objects_v2()
        .bucket("keys")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .unwrap();
    let listed: Vec<String> = r.contents().iter().map(|o| percent_decode(o.key().unwrap())).collect();
    assert_eq!(listed, want);
    // Nothing was written outside the data directory.
    let parent = s.dir.parent().unwrap();
    let outside: Vec<_> = std::fs::read_dir(parent).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, [std::ffi::OsString::from("data")]);
    let long = "k".repeat(1025);
    let e = c
        .put_object()
        .bucket("keys")
        .key(&long)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("KeyTooLongError", 400));
}

#[tokio::test]
async fn listing_pages_prefixes_and_markers() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("list").send().await.unwrap();
    let mut keys = Vec::new();
    for d in 0..3 {
        for f in 0..5 {
            keys.push(format!("dir{d}/f{f}"));
        }
    }
    keys.push("top".into());
    for k in &keys {
        c.put_object()
            .bucket("list")
            .key(k)
            .body(ByteStream::from_static(b""))
            .send()
            .await
            .unwrap();
    }
    // v2 pages of 4 cover every key exactly once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let r = c
            .list_objects_v2()
            .bucket("list")
            .max_keys(4)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        assert!(r.key_count().unwrap() <= 4);
        seen.extend(r.contents().iter().map(|o| o.key().unwrap().to_owned()));
        if !r.is_truncated().unwrap() {
            break;
        }
        token = r.next_continuation_token().map(str::to_owned);
    }
    assert_eq!(seen, keys);
    // Delimiter rolls up, and pages of one walk the prefixes.
    let r = c.list_objects_v2().bucket("list").delimiter("/").send().await.unwrap();
    let cps: Vec<_> = r.common_prefixes().iter().map(|p| p.prefix().unwrap()).collect();
    assert_eq!(cps, ["dir0/", "dir1/", "dir2/"]);
    assert_eq!(r.contents().iter().map(|o| o.key().unwrap()).collect::<Vec<_>>(), ["top"]);
    let r = c
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .max_keys(1)
        .start_after("dir0/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.common_prefixes()[0].prefix(), Some("dir1/"));
    // v1 with marker.
    let r = c
        .list_objects()
        .bucket("list")
        .prefix("dir1/")
        .marker("dir1/f2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.contents().iter().map(|o| o.key().unwrap()).collect::<Vec<_>>(),
        ["dir1/f3", "dir1/f4"]
    );
    // Versions listing shows the null version of each.
    let v = c.list_object_versions().bucket("list").prefix("dir2/").send().await.unwrap();
    assert_eq!(v.versions().len(), 5);
    assert!(
        v.versions()
            .iter()
            .all(|v| v.version_id() == Some("null") && v.is_latest() == Some(true))
    );
    let e = c.list_objects_v2().bucket("nolist").send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchBucket");
}

#[tokio::test]
async fn multipart_upload_rules() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("big")
        .content_type("video/x")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let p1 = bytes(7, 5 * 1024 * 1024);
    let p2 = bytes(8, 1234);
    let e1 = c
        .upload_part()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(p1.clone()))
        .send()
        .await
        .unwrap();
    let e2 = c
        .upload_part()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .part_number(2)
        .body(ByteStream::from(p2.clone()))
        .send()
        .await
        .unwrap();
    let parts = c.list_parts().bucket("mpu").key("big").upload_id(&id).send().await.unwrap();
    assert_eq!(
        parts
            .parts()
            .iter()
            .map(|p| (p.part_number().unwrap(), p.size().unwrap()))
            .collect::<Vec<_>>(),
        [(1, 5 * 1024 * 1024), (2, 1234)]
    );
    let uploads = c.list_multipart_uploads().bucket("mpu").send().await.unwrap();
    assert_eq!(uploads.uploads().len(), 1);
    let part = |n: i32, e: &str| CompletedPart::builder().part_number(n).e_tag(e).build();
    let wrong_order = CompletedMultipartUpload::builder()
        .parts(part(2, e2.e_tag().unwrap()))
        .parts(part(1, e1.e_tag().unwrap()))
        .build();
    let e = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(wrong_order)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidPartOrder");
    let bad_etag = CompletedMultipartUpload::builder()
        .parts(part(1, "\"00000000000000000000000000000000\""))
        .build();
    let e = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(bad_etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidPart");
    let done = CompletedMultipartUpload::builder()
        .parts(part(1, e1.e_tag().unwrap()))
        .parts(part(2, e2.e_tag().unwrap()))
        .build();
    let out = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    assert!(out.e_tag().unwrap().ends_with("-2\""));
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    assert_eq!(read(&c, "mpu", "big").await, whole);
    let h = c.head_object().bucket("mpu").key("big").send().await.unwrap();
    assert_eq!(h.content_type(), Some("video/x"));
    let part2 = c.get_object().bucket("mpu").key("big").part_number(2).send().await.unwrap();
    assert_eq!(part2.parts_count(), Some(2));
    assert_eq!(part2.body.collect().await.unwrap().into_bytes().as_ref(), &p2[..]);
    let e = c.list_parts().bucket("mpu").key("big").upload_id(&id).send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");

    // Too-small parts, abort, and bogus upload ids.
    let id = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("small")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let a = c
        .upload_part()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"tiny"))
        .send()
        .await
        .unwrap();
    let b = c
        .upload_part()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .part_number(2)
        .body(ByteStream::from_static(b"tiny"))
        .send()
        .await
        .unwrap();
    let two = CompletedMultipartUpload::builder()
        .parts(part(1, a.e_tag().unwrap()))
        .parts(part(2, b.e_tag().unwrap()))
        .build();
    let e = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .multipart_upload(two)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "EntityTooSmall");
    c.abort_multipart_upload()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let e = c
        .upload_part()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .part_number(3)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");
    let e = c
        .upload_part()
        .bucket("mpu")
        .key("small")
        .upload_id("../../x")
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");
    assert!(c.list_multipart_uploads().bucket("mpu").send().await.unwrap().uploads().is_empty());
}

#[tokio::test]
async fn checksums_are_verified_stored_and_returned() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("sums").send().await.unwrap();
    let body = bytes(3, 200_000);
    for alg in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ] {
        let key = format!("k-{}", alg.as_str());
        c.put_object()
            .bucket("sums")
            .key(&key)
            .checksum_algorithm(alg.clone())
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        let h = c
            .head_object()
            .bucket("sums")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let got = [
            h.checksum_crc32(),
            h.checksum_crc32_c(),
            h.checksum_crc64_nvme(),
            h.checksum_sha1(),
            h.checksum_sha256(),
        ];
        assert_eq!(got.iter().flatten().count(), 1, "{alg:?}");
        let g = c
            .get_object()
            .bucket("sums")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(g.body.collect().await.unwrap().into_bytes().as_ref(), &body[..]);
    }
    let e = c
        .put_object()
        .bucket("sums")
        .key("bad")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "BadDigest");
    let e = c
        .put_object()
        .bucket("sums")
        .key("bad")
        .content_md5("AAAAAAAAAAAAAAAAAAAAAA==")
        .body(ByteStream::from_static(b"abc"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "BadDigest");
    let e = c.head_object().bucket("sums").key("bad").send().await.unwrap_err();
    assert_eq!(status(&e), 404, "a failed checksum must store nothing");
}

#[tokio::test]
async fn copies() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("src").send().await.unwrap();
    c.create_bucket().bucket("dst").send().await.unwrap();
    let body = bytes(9, 400_000);
    c.put_object()
        .bucket("src")
        .key("o")
        .content_type("text/a")
        .metadata("m", "1")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let r = c.copy_object().bucket("dst").key("copy").copy_source("src/o").send().await.unwrap();
    assert!(r.copy_object_result().unwrap().e_tag().is_some());
    let h = c.head_object().bucket("dst").key("copy").send().await.unwrap();
    assert_eq!(
        (h.content_type(), h.metadata().unwrap().get("m").map(String::as_str)),
        (Some("text/a"), Some("1"))
    );
    assert_eq!(read(&c, "dst", "copy").await, body);
    c.copy_object()
        .bucket("dst")
        .key("copy")
        .copy_source("dst/copy")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/b")
        .metadata("n", "2")
        .send()
        .await
        .unwrap();
    let h = c.head_object().bucket("dst").key("copy").send().await.unwrap();
    assert_eq!(h.content_type(), Some("text/b"));
    assert_eq!(h.metadata().unwrap().get("m"), None);
    assert_eq!(read(&c, "dst", "copy").await, body);
    let e = c
        .copy_object()
        .bucket("dst")
        .key("copy")
        .copy_source("dst/copy")
        .send()
        .await
        .unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("InvalidRequest", 400));
    let e = c
        .copy_object()
        .bucket("dst")
        .key("x")
        .copy_source("src/o")
        .copy_source_if_match("\"nope\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 412);
    let e = c
        .copy_object()
        .bucket("dst")
        .key("x")
        .copy_source("src/missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchKey");

    // UploadPartCopy with ranges assembles an object from pieces of another.
    let id = c
        .create_multipart_upload()
        .bucket("dst")
        .key("assembled")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let big = bytes(10, 6 * 1024 * 1024);
    c.put_object()
        .bucket("src")
        .key("big")
        .body(ByteStream::from(big.clone()))
        .send()
        .await
        .unwrap();
    let a = c
        .upload_part_copy()
        .bucket("dst")
        .key("assembled")
        .upload_id(&id)
        .part_number(1)
        .copy_source("src/big")
        .copy_source_range("bytes=0-5242879")
        .send()
        .await
        .unwrap();
    let b = c
        .upload_part_copy()
        .bucket("dst")
        .key("assembled")
        .upload_id(&id)
        .part_number(2)
        .copy_source("src/big")
        .copy_source_range("bytes=5242880-6291455")
        .send()
        .await
        .unwrap();
    let parts = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(a.copy_part_result().unwrap().e_tag().unwrap())
                .build(),
        )
        .parts(
            CompletedPart::builder()
                .part_number(2)
                .e_tag(b.copy_part_result().unwrap().e_tag().unwrap())
                .build(),
        )
        .build();
    c.complete_multipart_upload()
        .bucket("dst")
        .key("assembled")
        .upload_id(&id)
        .multipart_upload(parts)
        .send()
        .await
        .unwrap();
    assert_eq!(read(&c, "dst", "assembled").await, big);
}

#[tokio::test]
async fn delete_objects_quiet_and_verbose() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("del").send().await.unwrap();
    for i in 0..10 {
        c.put_object()
            .bucket("del")
            .key(format!("k{i}"))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let ids = |r: std::ops::Range<i32>| {
        Delete::builder()
            .set_objects(Some(
                r.map(|i| ObjectIdentifier::builder().key(format!("k{i}")).build().unwrap())
                    .collect(),
            ))
            .build()
            .unwrap()
    };
    let out = c.delete_objects().bucket("del").delete(ids(0..5)).send().await.unwrap();
    assert_eq!(out.deleted().len(), 5);
    let mut quiet = ids(5..12);
    quiet.quiet = Some(true);
    let out = c.delete_objects().bucket("del").delete(quiet).send().await.unwrap();
    assert!(out.deleted().is_empty() && out.errors().is_empty());
    assert!(c.list_objects_v2().bucket("del").send().await.unwrap().contents().is_empty());
}

#[tokio::test]
async fn authentication_errors() {
    let s = Server::start();
    let e = s.client_with(common::USER, "wrong-secret").list_buckets().send().await.unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("SignatureDoesNotMatch", 403));
    let e = s.client_with("nobody", "whatever-secret").list_buckets().send().await.unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("InvalidAccessKeyId", 403));
    s.client().create_bucket().bucket("priv").send().await.unwrap();
    let (st, body) = s.raw("GET /priv/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(st, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    let (st, body) = s.raw("PUT /priv/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
    assert_eq!(st, 403, "{body}");
    let e = s.client().head_object().bucket("priv").key("x").send().await.unwrap_err();
    assert_eq!(status(&e), 404, "an anonymous PUT must store nothing");
}

#[tokio::test]
async fn presigned_urls() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("pre").send().await.unwrap();
    c.put_object()
        .bucket("pre")
        .key("obj")
        .body(ByteStream::from_static(b"presigned!"))
        .send()
        .await
        .unwrap();
    let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(300)).unwrap();
    let req = c.get_object().bucket("pre").key("obj").presigned(cfg).await.unwrap();
    let path = req.uri().trim_start_matches(&s.url).to_owned();
    let (st, body) = s.raw(&format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", s.addr));
    assert_eq!((st, body.as_str()), (200, "presigned!"));
    let at = path.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &path[at..=at] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &path[..at], &path[at + 1..]);
    let (st, _) = s.raw(&format!("GET {tampered} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", s.addr));
    assert_eq!(st, 403);
}

#[tokio::test]
async fn restart_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let body = bytes(11, 1_000_000);
    {
        let s = Server::start_on(&dir, "127.0.0.1:0");
        let c = s.client();
        c.create_bucket().bucket("keep").send().await.unwrap();
        c.put_object()
            .bucket("keep")
            .key("big")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        c.put_object()
            .bucket("keep")
            .key("small")
            .body(ByteStream::from_static(b"s"))
            .send()
            .await
            .unwrap();
        let id = c
            .create_multipart_upload()
            .bucket("keep")
            .key("pending")
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_owned();
        c.upload_part()
            .bucket("keep")
            .key("pending")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from_static(b"p"))
            .send()
            .await
            .unwrap();
        let mut s = s;
        assert!(s.terminate().success(), "SIGTERM exits cleanly");
    }
    let s = Server::start_on(&dir, "127.0.0.1:0");
    let c = s.client();
    assert_eq!(read(&c, "keep", "big").await, body);
    assert_eq!(read(&c, "keep", "small").await, b"s");
    let ups = c.list_multipart_uploads().bucket("keep").send().await.unwrap();
    let id = ups.uploads()[0].upload_id().unwrap();
    assert_eq!(
        c.list_parts()
            .bucket("keep")
            .key("pending")
            .upload_id(id)
            .send()
            .await
            .unwrap()
            .parts()
            .len(),
        1
    );
}

#[derive(Debug)]
struct Skewed(std::time::Duration);

impl aws_smithy_async::time::TimeSource for Skewed {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now() - self.0
    }
}

#[tokio::test]
async fn clock_skew_is_refused() {
    let s = Server::start();
    let conf = s
        .client()
        .config()
        .to_builder()
        .time_source(Skewed(std::time::Duration::from_secs(20 * 60)))
        // The SDK would otherwise learn the skew from the error and retry with corrected time.
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    let c = aws_sdk_s3::Client::from_conf(conf);
    let e = c.list_buckets().send().await.unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("RequestTimeTooSkewed", 403));
    // Within the 15-minute window is fine.
    let conf = s
        .client()
        .config()
        .to_builder()
        .time_source(Skewed(std::time::Duration::from_secs(5 * 60)))
        .build();
    aws_sdk_s3::Client::from_conf(conf).list_buckets().send().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_stores_nothing() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bad").send().await.unwrap();
    // User metadata over 2 KiB.
    let e = c
        .put_object()
        .bucket("bad")
        .key("meta")
        .metadata("big", "v".repeat(2100))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("MetadataTooLarge", 400));
    // A body shorter than its Content-Length, then the client goes away.
    let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(60)).unwrap();
    let url = c
        .put_object()
        .bucket("bad")
        .key("short")
        .presigned(cfg)
        .await
        .unwrap()
        .uri()
        .to_owned();
    let path = url.trim_start_matches(&s.url).to_owned();
    {
        use std::io::Write;
        let mut sock = std::net::TcpStream::connect(&s.addr).unwrap();
        write!(
            sock,
            "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 100000\r\n\r\n0123456789",
            s.addr
        )
        .unwrap();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut sock, &mut out);
    }
    let e = c.head_object().bucket("bad").key("short").send().await.unwrap_err();
    assert_eq!(status(&e), 404, "a truncated PUT stores nothing");
    // Unknown storage class and bad part numbers.
    let e = c
        .put_object()
        .bucket("bad")
        .key("sc")
        .storage_class(aws_sdk_s3::types::StorageClass::from("PLATINUM"))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidStorageClass");
    let id = c
        .create_multipart_upload()
        .bucket("bad")
        .key("m")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let e = c
        .upload_part()
        .bucket("bad")
        .key("m")
        .upload_id(&id)
        .part_number(10_001)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!((code(&e).as_str(), status(&e)), ("InvalidArgument", 400));
    let e = c.get_object().bucket("bad").key("m").part_number(1).send().await.unwrap_err();
    assert_eq!(status(&e), 404);
    assert!(c.list_objects_v2().bucket("bad").send().await.unwrap().contents().is_empty());
}
