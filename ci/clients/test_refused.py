"""What Quarry does not do is refused, never silently ignored: every encryption and Object
Lock header on every operation that takes one, and conditions it cannot judge. Each refusal
also leaves nothing behind (no object, no part, no upload)."""

import base64
import hashlib

import pytest
from botocore.exceptions import ClientError

from conftest import make_client
from test_post import post_form

KEY = base64.b64encode(b"k" * 32).decode()
KEY_MD5 = base64.b64encode(hashlib.md5(b"k" * 32).digest()).decode()
SSE_C = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=KEY, SSECustomerKeyMD5=KEY_MD5)
COPY_SSE_C = dict(CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=KEY, CopySourceSSECustomerKeyMD5=KEY_MD5)
WRITE_SSE = [
    pytest.param(dict(ServerSideEncryption="AES256"), id="sse-s3"),
    pytest.param(dict(ServerSideEncryption="aws:kms"), id="sse-kms"),
    pytest.param(dict(ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/backup"), id="sse-kms-key"),
    pytest.param(dict(ServerSideEncryption="aws:kms", SSEKMSEncryptionContext=base64.b64encode(b'{"a":"b"}').decode()), id="kms-context"),
    pytest.param(dict(BucketKeyEnabled=True), id="bucket-key"),
    pytest.param(SSE_C, id="sse-c"),
]
LOCK = [
    pytest.param(dict(ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate="2030-01-01T00:00:00Z"), id="retention"),
    pytest.param(dict(ObjectLockLegalHoldStatus="ON"), id="legal-hold"),
]


def refused(call, code, status):
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == status, err
    assert err["Error"]["Code"] == code, err


def no_object(s3, bucket, key):
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.parametrize("extra", WRITE_SSE)
def test_put_with_encryption_is_refused_and_stores_nothing(s3, bucket, extra):
    refused(lambda: s3.put_object(Bucket=bucket, Key="secret", Body=b"plaintext", **extra), "NotImplemented", 501)
    no_object(s3, bucket, "secret")


# Malformed or contradictory encryption requests are 400 on any server, before the 501.
BAD_SSE = [
    pytest.param(dict(SSEKMSEncryptionContext=base64.b64encode(b'{"a":"b"}').decode()), "InvalidArgument", id="context-without-kms"),
    pytest.param(dict(ServerSideEncryption="AES256", SSEKMSKeyId="alias/backup"), "InvalidArgument", id="kms-key-with-aes256"),
    pytest.param(dict(ServerSideEncryption="AES256", **SSE_C), "InvalidArgument", id="sse-s3-and-sse-c"),
    pytest.param(dict(SSE_C, SSECustomerAlgorithm="AES128"), "InvalidEncryptionAlgorithmError", id="sse-c-algorithm"),
    pytest.param(dict(SSE_C, SSECustomerKey=base64.b64encode(b"short").decode()), "InvalidArgument", id="sse-c-short-key"),
]


@pytest.mark.parametrize("extra,code", BAD_SSE)
def test_malformed_encryption_is_400_and_stores_nothing(s3, bucket, extra, code):
    refused(lambda: s3.put_object(Bucket=bucket, Key="secret", Body=b"plaintext", **extra), code, 400)
    no_object(s3, bucket, "secret")


@pytest.mark.parametrize("extra", WRITE_SSE)
def test_copy_and_multipart_with_encryption_are_refused(s3, bucket, extra):
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    refused(lambda: s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, **extra), "NotImplemented", 501)
    no_object(s3, bucket, "dst")
    refused(lambda: s3.create_multipart_upload(Bucket=bucket, Key="mp", **extra), "NotImplemented", 501)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_customer_keys_on_reads_and_parts_are_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"plain,text\n1,2\n")
    refused(lambda: s3.get_object(Bucket=bucket, Key="obj", **SSE_C), "NotImplemented", 501)
    refused(lambda: s3.head_object(Bucket=bucket, Key="obj", **SSE_C), "501", 501)
    refused(lambda: s3.get_object_attributes(Bucket=bucket, Key="obj", ObjectAttributes=["ETag"], **SSE_C), "NotImplemented", 501)
    refused(
        lambda: s3.select_object_content(
            Bucket=bucket,
            Key="obj",
            Expression="SELECT * FROM S3Object",
            ExpressionType="SQL",
            InputSerialization={"CSV": {}},
            OutputSerialization={"CSV": {}},
            **SSE_C,
        ),
        "NotImplemented",
        501,
    )
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    refused(lambda: s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"x" * 10, **SSE_C), "NotImplemented", 501)
    refused(
        lambda: s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, CopySource={"Bucket": bucket, "Key": "obj"}, **COPY_SSE_C),
        "NotImplemented",
        501,
    )
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=up).get("Parts", []) == []
    refused(lambda: s3.list_parts(Bucket=bucket, Key="mp", UploadId=up, **SSE_C), "NotImplemented", 501)
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"x" * 10)["ETag"]
    refused(
        lambda: s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]}, **SSE_C
        ),
        "NotImplemented",
        501,
    )
    no_object(s3, bucket, "mp")
    refused(
        lambda: s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "obj"}, **COPY_SSE_C),
        "NotImplemented",
        501,
    )
    no_object(s3, bucket, "dst")


def test_bucket_encryption_configuration_is_refused(s3, bucket):
    rule = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    refused(lambda: s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=rule), "NotImplemented", 501)


@pytest.mark.parametrize("extra", LOCK)
def test_object_lock_headers_are_refused(s3, bucket, extra):
    # No bucket has Object Lock (CreateBucket refuses it): AWS's answer for such a bucket.
    refused(lambda: s3.put_object(Bucket=bucket, Key="worm", Body=b"backup", **extra), "InvalidRequest", 400)
    no_object(s3, bucket, "worm")
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    refused(lambda: s3.copy_object(Bucket=bucket, Key="worm", CopySource={"Bucket": bucket, "Key": "src"}, **extra), "InvalidRequest", 400)
    no_object(s3, bucket, "worm")
    refused(lambda: s3.create_multipart_upload(Bucket=bucket, Key="worm", **extra), "InvalidRequest", 400)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_object_lock_bucket_is_refused(s3):
    refused(lambda: s3.create_bucket(Bucket="quarry-lock-refused", ObjectLockEnabledForBucket=True), "NotImplemented", 501)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "quarry-lock-refused" not in names


def test_post_form_with_encryption_is_refused(server, s3, bucket):
    signer = make_client(server)
    fields = {"x-amz-server-side-encryption": "AES256"}
    p = signer.generate_presigned_post(bucket, "form.txt", Fields=fields, Conditions=[fields], ExpiresIn=300)
    status, body = post_form(p["url"], p["fields"], b"secret form data")
    assert status == 501 and b"<Code>NotImplemented</Code>" in body, body
    no_object(s3, bucket, "form.txt")


def test_expected_bucket_owner_is_checked(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    # The account that owns every bucket of a one-account deployment.
    assert s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner="000000000000")["Body"].read() == b"v"
    refused(lambda: s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner="123456789012"), "AccessDenied", 403)
    refused(lambda: s3.put_object(Bucket=bucket, Key="k2", Body=b"v", ExpectedBucketOwner="123456789012"), "AccessDenied", 403)
    no_object(s3, bucket, "k2")
    refused(lambda: s3.list_objects_v2(Bucket=bucket, ExpectedBucketOwner="123456789012"), "AccessDenied", 403)
    refused(
        lambda: s3.copy_object(Bucket=bucket, Key="k3", CopySource={"Bucket": bucket, "Key": "k"}, ExpectedSourceBucketOwner="123456789012"),
        "AccessDenied",
        403,
    )
    no_object(s3, bucket, "k3")


def test_conditional_delete_by_size_and_time(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"four")
    head = s3.head_object(Bucket=bucket, Key="k")
    refused(lambda: s3.delete_object(Bucket=bucket, Key="k", IfMatchSize=5), "PreconditionFailed", 412)
    refused(lambda: s3.delete_object(Bucket=bucket, Key="k", IfMatchLastModifiedTime="2001-01-01T00:00:00Z"), "PreconditionFailed", 412)
    s3.head_object(Bucket=bucket, Key="k")
    s3.delete_object(Bucket=bucket, Key="k", IfMatchSize=4, IfMatchLastModifiedTime=head["LastModified"])
    no_object(s3, bucket, "k")


def test_abort_by_initiated_time_is_refused(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    refused(
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, IfMatchInitiatedTime="2001-01-01T00:00:00Z"),
        "NotImplemented",
        501,
    )
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [up]


def test_delete_objects_conditions_are_judged(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"four")["ETag"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "ETag": '"0123"'}, {"Key": "k", "Size": 5}]})
    assert [e["Code"] for e in r["Errors"]] == ["PreconditionFailed", "PreconditionFailed"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"four"
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "ETag": etag, "Size": 4}]})
    assert [d["Key"] for d in r["Deleted"]] == ["k"] and "Errors" not in r
    no_object(s3, bucket, "k")


def test_request_ids_match_between_header_and_error_body(server, bucket):
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{server.url}/{bucket}/missing")
        raise AssertionError("an anonymous GET of a private bucket succeeded")
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        rid = e.headers["x-amz-request-id"]
    assert rid and f"<RequestId>{rid}</RequestId>" in body, body


def test_completing_an_upload_twice_answers_alike(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"x" * 10)["ETag"]
    parts = {"Parts": [{"ETag": etag, "PartNumber": 1}]}
    first = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload=parts)
    again = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload=parts)
    assert first["ETag"] == again["ETag"]
    # Another upload id is still unknown.
    refused(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up[:-2] + "00", MultipartUpload=parts), "NoSuchUpload", 404)
