"""boto3 against quarry: every operation of the foundation, as an SDK user calls it."""

import base64
import datetime
import hashlib
import io
import os
import urllib.error
import urllib.request
import zlib

import pytest
from botocore.exceptions import ClientError

from conftest import make_client


def code(exc):
    return exc.value.response["Error"]["Code"]


def status(exc):
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.ops("ListBuckets", "CreateBucket", "HeadBucket", "GetBucketLocation", "DeleteBucket")
def test_buckets(s3, bucket):
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bucket in names
    s3.head_bucket(Bucket=bucket)
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] in (None, "")
    # Re-creating one's own bucket in us-east-1 answers 200, as AWS's legacy there does,
    # and leaves its objects.
    s3.put_object(Bucket=bucket, Key="kept", Body=b"k")
    s3.create_bucket(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"k"
    s3.delete_object(Bucket=bucket, Key="kept")
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="UPPER_case")
    assert status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="no-such-bucket-here")
    assert status(e) == 404
    s3.put_object(Bucket=bucket, Key="x", Body=b"1")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert code(e) == "BucketNotEmpty"


@pytest.mark.ops("PutObject", "GetObject", "HeadObject")
def test_put_get_head_metadata(s3, bucket):
    body = os.urandom(300_000)
    r = s3.put_object(
        Bucket=bucket,
        Key="data/obj.bin",
        Body=body,
        ContentType="application/x-thing",
        ContentEncoding="identity",
        ContentDisposition='attachment; filename="a.bin"',
        ContentLanguage="en",
        CacheControl="no-cache",
        Expires=datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc),
        Metadata={"Owner": "team-a", "n": "1"},
    )
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    g = s3.get_object(Bucket=bucket, Key="data/obj.bin")
    assert g["Body"].read() == body
    assert g["ContentType"] == "application/x-thing"
    assert g["ContentDisposition"] == 'attachment; filename="a.bin"'
    assert g["ContentLanguage"] == "en"
    assert g["CacheControl"] == "no-cache"
    assert g["Metadata"] == {"owner": "team-a", "n": "1"}
    assert g["Expires"].year == 2030
    h = s3.head_object(Bucket=bucket, Key="data/obj.bin")
    assert h["ContentLength"] == len(body) and h["ETag"] == r["ETag"]
    # response-* overrides
    g = s3.get_object(Bucket=bucket, Key="data/obj.bin", ResponseContentType="text/x-over", ResponseCacheControl="max-age=5")
    assert g["ContentType"] == "text/x-over" and g["CacheControl"] == "max-age=5"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="missing")
    assert code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="missing")
    assert status(e) == 404


@pytest.mark.ops("GetObject", "HeadObject", "PutObject")
def test_ranges_and_conditions(s3, bucket):
    body = bytes(range(256)) * 1000
    etag = s3.put_object(Bucket=bucket, Key="r", Body=body)["ETag"]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=0-9")["Body"].read() == body[:10]
    g = s3.get_object(Bucket=bucket, Key="r", Range="bytes=255990-")
    assert g["Body"].read() == body[255990:] and g["ContentRange"] == "bytes 255990-255999/256000"
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-7")["Body"].read() == body[-7:]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=256000-")
    assert status(e) == 416 and code(e) == "InvalidRange"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", IfNoneMatch=etag)
    assert status(e) == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", IfMatch='"nope"')
    assert status(e) == 412
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="r", IfModifiedSince=future)
    assert status(e) == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", IfUnmodifiedSince=past)
    assert status(e) == 412
    # If-Match true wins over If-Unmodified-Since false.
    assert s3.get_object(Bucket=bucket, Key="r", IfMatch=etag, IfUnmodifiedSince=past)["Body"].read() == body
    # Conditional writes.
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="r", Body=b"x", IfNoneMatch="*")
    assert status(e) == 412
    s3.put_object(Bucket=bucket, Key="r", Body=b"y", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="r")["Body"].read() == b"y"


@pytest.mark.ops("PutObject", "HeadObject", "GetObject")
def test_checksums_default_trailer_and_explicit(s3, bucket):
    # Recent botocore sends a CRC32 trailer in an aws-chunked body by default.
    body = os.urandom(100_000)
    r = s3.put_object(Bucket=bucket, Key="c1", Body=io.BytesIO(body))
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert r.get("ChecksumCRC32") == crc
    h = s3.head_object(Bucket=bucket, Key="c1", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == crc
    for alg in ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]:
        try:
            s3.put_object(Bucket=bucket, Key="c-" + alg, Body=body, ChecksumAlgorithm=alg)
        except Exception as exc:  # CRC32C/CRC64NVME need awscrt in some botocore builds
            if "awscrt" in str(exc) or "MissingDependency" in type(exc).__name__:
                continue
            raise
        g = s3.get_object(Bucket=bucket, Key="c-" + alg, ChecksumMode="ENABLED")
        assert g["Body"].read() == body
        assert g.get("Checksum" + alg)
    sha = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"data", ChecksumSHA256=sha)
    assert code(e) == "BadDigest"
    md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"data", ContentMD5=md5)
    assert code(e) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


@pytest.mark.ops("PutObject")
def test_unsigned_payload_client(server, bucket):
    c = make_client(server, request_checksum_calculation="when_required", signature_version="s3v4")
    c.put_object(Bucket=bucket, Key="plain", Body=b"no trailer")
    assert c.get_object(Bucket=bucket, Key="plain")["Body"].read() == b"no trailer"


@pytest.mark.ops("ListObjects", "ListObjectsV2", "ListObjectVersions")
def test_listing(s3, bucket):
    keys = sorted([f"p/{i:03d}" for i in range(25)] + ["q/1", "q/2/3", "top", "a b+c", "é"])
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    got = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 7}):
        got += [o["Key"] for o in page.get("Contents", [])]
    assert got == keys
    got = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 6}):
        got += [o["Key"] for o in page.get("Contents", [])]
    assert got == keys
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["p/", "q/"]
    assert [o["Key"] for o in r["Contents"]] == ["a b+c", "top", "é"]
    r = s3.list_objects_v2(Bucket=bucket, Prefix="q/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["q/1"] and r["CommonPrefixes"] == [{"Prefix": "q/2/"}]
    r = s3.list_objects_v2(Bucket=bucket, StartAfter="p/020", Prefix="p/")
    assert [o["Key"] for o in r["Contents"]] == ["p/021", "p/022", "p/023", "p/024"]
    r = s3.list_objects_v2(Bucket=bucket, MaxKeys=2, FetchOwner=True)
    assert r["IsTruncated"] and r["KeyCount"] == 2 and "Owner" in r["Contents"][0]
    r = s3.list_objects_v2(Bucket=bucket, EncodingType="url", Prefix="a")
    assert [o["Key"] for o in r["Contents"]] == ["a%20b%2Bc"]  # asked for explicitly, so left encoded
    v = s3.list_object_versions(Bucket=bucket, Prefix="q/")
    assert [(x["Key"], x["VersionId"], x["IsLatest"]) for x in v["Versions"]] == [("q/1", "null", True), ("q/2/3", "null", True)]


@pytest.mark.ops("DeleteObjects", "DeleteObject")
def test_delete_objects(s3, bucket):
    for i in range(20):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"d/{i}"} for i in range(10)]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(f"d/{i}" for i in range(10))
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"d/{i}"} for i in range(10, 20)], "Quiet": True})
    assert not r.get("Deleted") and not r.get("Errors")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_object(Bucket=bucket, Key="never-existed")


@pytest.mark.ops("CopyObject")
def test_copy(s3, bucket):
    body = os.urandom(200_000)
    s3.put_object(Bucket=bucket, Key="src", Body=body, ContentType="a/b", Metadata={"k": "v"})
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    h = s3.head_object(Bucket=bucket, Key="dst")
    assert h["ContentType"] == "a/b" and h["Metadata"] == {"k": "v"}
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "dst"}, MetadataDirective="REPLACE", Metadata={"z": "1"}, ContentType="c/d")
    h = s3.head_object(Bucket=bucket, Key="dst")
    assert h["ContentType"] == "c/d" and h["Metadata"] == {"z": "1"}
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == body
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert code(e) == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfNoneMatch=h["ETag"])
    assert status(e) == 412
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "nope"})
    assert code(e) == "NoSuchKey"


@pytest.mark.ops("ListMultipartUploads")
def test_list_uploads_url_encoded(s3, bucket):
    """EncodingType=url encodes every key the answer names (boto3 does not decode this
    operation's answer, so the encoded form is what arrives)."""
    ids = [s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"] for k in ("dir a/ü 1", "dir a/ü 2", "top+x")]
    out = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url", Prefix="dir a/")
    assert [u["Key"] for u in out["Uploads"]] == ["dir%20a/%C3%BC%201", "dir%20a/%C3%BC%202"]
    assert out["Prefix"] == "dir%20a/"
    out = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url", Delimiter="/")
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["dir%20a/"]
    assert [u["Key"] for u in out["Uploads"]] == ["top%2Bx"]
    out = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url", MaxUploads=1)
    assert out["IsTruncated"] and out["NextKeyMarker"] == "dir%20a/%C3%BC%201"
    # Without it, keys come as they are.
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == ["dir a/ü 1", "dir a/ü 2", "top+x"]
    for k, uid in zip(("dir a/ü 1", "dir a/ü 2", "top+x"), ids):
        s3.abort_multipart_upload(Bucket=bucket, Key=k, UploadId=uid)


@pytest.mark.ops("CreateMultipartUpload", "UploadPart", "ListParts", "ListMultipartUploads", "CompleteMultipartUpload", "AbortMultipartUpload")
def test_multipart(s3, bucket):
    part1, part2 = os.urandom(5 * 1024 * 1024), os.urandom(1024 * 1024 + 7)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="x/y", Metadata={"m": "1"})
    uid = up["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=part2)["ETag"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(part1)), (2, len(part2))]
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid, MaxParts=1)
    assert parts["IsTruncated"] and parts["NextPartNumberMarker"] == 1
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    assert code(e) == "InvalidPartOrder"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}]})
    assert code(e) == "InvalidPart"
    r = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    want = hashlib.md5(hashlib.md5(part1).digest() + hashlib.md5(part2).digest()).hexdigest() + "-2"
    assert r["ETag"] == f'"{want}"'
    g = s3.get_object(Bucket=bucket, Key="mp")
    assert g["Body"].read() == part1 + part2 and g["ContentType"] == "x/y" and g["Metadata"] == {"m": "1"}
    g = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert g["Body"].read() == part2 and g["PartsCount"] == 2
    assert s3.head_object(Bucket=bucket, Key="mp", PartNumber=1)["ContentLength"] == len(part1)
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert code(e) == "NoSuchUpload"
    # EntityTooSmall and abort.
    uid = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    a = s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=1, Body=b"a")["ETag"]
    b = s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=2, Body=b"b")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": a}, {"PartNumber": 2, "ETag": b}]})
    assert code(e) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=uid)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=1, Body=b"a")
    assert code(e) == "NoSuchUpload"


@pytest.mark.ops("UploadPartCopy", "CompleteMultipartUpload")
def test_multipart_with_checksums_and_part_copy(s3, bucket):
    src = os.urandom(6 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled", ChecksumAlgorithm="SHA256")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1, CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange="bytes=0-5242879")
    p2 = s3.upload_part(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=2, Body=b"tail", ChecksumAlgorithm="SHA256")
    parts = [
        {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"], "ChecksumSHA256": p1["CopyPartResult"]["ChecksumSHA256"]},
        {"PartNumber": 2, "ETag": p2["ETag"], "ChecksumSHA256": p2["ChecksumSHA256"]},
    ]
    r = s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid, MultipartUpload={"Parts": parts})
    raw = hashlib.sha256(hashlib.sha256(src[:5242880]).digest() + hashlib.sha256(b"tail").digest()).digest()
    assert r["ChecksumSHA256"] == base64.b64encode(raw).decode() + "-2"
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == src[:5242880] + b"tail"


@pytest.mark.ops("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "GetObject")
def test_upload_file_transfer_manager(s3, bucket, tmp_path):
    path = tmp_path / "big.bin"
    data = os.urandom(20 * 1024 * 1024 + 3)
    path.write_bytes(data)
    from boto3.s3.transfer import TransferConfig

    cfg = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
    s3.upload_file(str(path), bucket, "big.bin", Config=cfg)
    out = tmp_path / "out.bin"
    s3.download_file(bucket, "big.bin", str(out), Config=cfg)
    assert out.read_bytes() == data
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ETag"].endswith('-3"')


@pytest.mark.ops("GetObject", "PutObject")
def test_presigned_urls(s3, bucket, server):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned body")
    # boto3's default presigner still makes SigV2 query URLs.
    v2 = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in v2 and urllib.request.urlopen(v2).read() == b"presigned body"
    s3 = make_client(server, signature_version="s3v4")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in url and urllib.request.urlopen(url).read() == b"presigned body"
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=300)
    req = urllib.request.Request(put_url, data=b"uploaded via url", method="PUT")
    urllib.request.urlopen(req).read()
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"uploaded via url"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url.replace("X-Amz-Signature=", "X-Amz-Signature=00"))
    assert e.value.code in (400, 403)
    # X-Amz-Expires beyond seven days is refused.
    too_long = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=700000)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(too_long)
    assert e.value.code in (400, 403)


@pytest.mark.ops("ListObjectsV2", "ListBuckets")
def test_auth_errors(server, bucket):
    import boto3
    from botocore.config import Config

    bad = boto3.client("s3", endpoint_url=server.url, aws_access_key_id="quarry-ci", aws_secret_access_key="wrong", region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    with pytest.raises(ClientError) as e:
        bad.list_objects_v2(Bucket=bucket)
    assert code(e) == "SignatureDoesNotMatch"
    unknown = boto3.client("s3", endpoint_url=server.url, aws_access_key_id="nobody", aws_secret_access_key="x" * 10, region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert code(e) == "InvalidAccessKeyId"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{server.url}/{bucket}/")
    assert e.value.code == 403
    assert b"AccessDenied" in e.value.read()


@pytest.mark.ops("PutObject", "GetObject", "ListObjectsV2")
def test_hostile_keys(s3, bucket, server):
    keys = ["../escape", "a/../../b", "./.", "//double", "with space", "percent%2F", "ctrl\x07bell", "ключ", "a", "a/b"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in keys:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda s: s.encode())
    assert not os.path.exists(os.path.join(os.path.dirname(server.data_dir), "escape"))


@pytest.mark.ops("DeleteObjects", "CompleteMultipartUpload")
def test_malformed_xml_is_rejected(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")

    def corrupt(request, **kwargs):
        request.data = b"<Delete><Object><Key>k</Key></Obj"
        for h in [h for h in request.headers.keys() if h.lower() == "content-md5" or h.lower().startswith("x-amz-checksum") or h.lower() == "x-amz-sdk-checksum-algorithm"]:
            del request.headers[h]
        request.headers["Content-Length"] = str(len(request.data))

    s3.meta.events.register("before-sign.s3.DeleteObjects", corrupt)
    try:
        with pytest.raises(ClientError) as e:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]})
        assert code(e) == "MalformedXML" and status(e) == 400
    finally:
        s3.meta.events.unregister("before-sign.s3.DeleteObjects", corrupt)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x", "nothing was deleted"
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert code(e) == "MalformedXML"


@pytest.mark.ops("GetBucketAcl", "PutBucketAcl", "GetObjectAcl", "PutObjectAcl")
def test_acls_as_on_an_owner_enforced_bucket(s3, bucket):
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
    assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"]
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert code(e) == "AccessControlListNotSupported"
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ACL="bucket-owner-full-control")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="o2", Body=b"x", ACL="public-read")
    assert code(e) == "AccessControlListNotSupported"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="o2")
    assert s3.get_object_acl(Bucket=bucket, Key="o")["Grants"][0]["Permission"] == "FULL_CONTROL"
    s3.put_object_acl(Bucket=bucket, Key="o", AccessControlPolicy={"Owner": acl["Owner"], "Grants": acl["Grants"]})
    with pytest.raises(ClientError) as e:
        s3.put_object_acl(Bucket=bucket, Key="o", GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"')
    assert code(e) == "AccessControlListNotSupported"
    with pytest.raises(ClientError) as e:
        s3.get_object_acl(Bucket=bucket, Key="missing")
    assert code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=bucket + "-pub", ACL="public-read")
    assert code(e) == "InvalidBucketAclWithObjectOwnership"


@pytest.mark.ops("PutObjectTagging", "GetObjectTagging", "DeleteObjectTagging", "PutObject", "CopyObject", "CreateMultipartUpload")
def test_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"tagged", Tagging="team=data&stage=raw%20zone")
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]}
    assert tags == {"team": "data", "stage": "raw zone"}
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2
    before = s3.head_object(Bucket=bucket, Key="t")
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "k", "Value": "v"}]
    after = s3.head_object(Bucket=bucket, Key="t")
    assert after["ETag"] == before["ETag"] and after["LastModified"] == before["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="t")["Body"].read() == b"tagged"
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "t"})
    assert s3.get_object_tagging(Bucket=bucket, Key="copied")["TagSet"] == [{"Key": "k", "Value": "v"}]
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource={"Bucket": bucket, "Key": "t"}, TaggingDirective="REPLACE", Tagging="x=1")
    assert s3.get_object_tagging(Bucket=bucket, Key="replaced")["TagSet"] == [{"Key": "x", "Value": "1"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]})
    assert code(e) == "InvalidTag"
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="missing", Tagging={"TagSet": []})
    assert code(e) == "NoSuchKey"
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="from=mpu")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="mp")["TagSet"] == [{"Key": "from", "Value": "mpu"}]


@pytest.mark.ops("GetBucketVersioning", "GetBucketPolicy", "GetBucketEncryption", "GetBucketLifecycleConfiguration", "GetBucketCors", "GetBucketTagging", "GetObjectLockConfiguration", "GetBucketOwnershipControls")
def test_bucket_configuration_reads_say_none_is_set(s3, bucket):
    v = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in v and "MFADelete" not in v
    for call, want in [
        (lambda: s3.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy"),
        (lambda: s3.get_bucket_encryption(Bucket=bucket), "ServerSideEncryptionConfigurationNotFoundError"),
        (lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket), "NoSuchLifecycleConfiguration"),
        (lambda: s3.get_bucket_cors(Bucket=bucket), "NoSuchCORSConfiguration"),
        (lambda: s3.get_bucket_tagging(Bucket=bucket), "NoSuchTagSet"),
        (lambda: s3.get_object_lock_configuration(Bucket=bucket), "ObjectLockConfigurationNotFoundError"),
        (lambda: s3.get_bucket_versioning(Bucket="no-such-bucket-cfg"), "NoSuchBucket"),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == want
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]


@pytest.mark.ops("GetObjectAttributes")
def test_get_object_attributes(s3, bucket):
    body = os.urandom(10_000)
    s3.put_object(Bucket=bucket, Key="a", Body=body, ChecksumAlgorithm="SHA256")
    r = s3.get_object_attributes(Bucket=bucket, Key="a", ObjectAttributes=["ETag", "ObjectSize", "StorageClass", "Checksum"])
    assert r["ObjectSize"] == 10_000 and r["StorageClass"] == "STANDARD"
    # GetObjectAttributes names the ETag without quotes, as AWS does.
    assert r["ETag"] == hashlib.md5(body).hexdigest()
    assert r["Checksum"]["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")["UploadId"]
    parts = []
    for n, data in [(1, os.urandom(5 * 1024 * 1024)), (2, b"tail")]:
        p = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=n, Body=data, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": p["ETag"], "ChecksumCRC32": p["ChecksumCRC32"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
    r = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts", "ObjectSize"], MaxParts=1)
    op = r["ObjectParts"]
    assert op["TotalPartsCount"] == 2 and op["IsTruncated"] and op["NextPartNumberMarker"] == 1
    assert op["Parts"][0]["Size"] == 5 * 1024 * 1024 and op["Parts"][0]["ChecksumCRC32"] == parts[0]["ChecksumCRC32"]
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert status(e) == 404
