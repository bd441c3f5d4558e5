"""Legacy Signature Version 2 from boto3 (`signature_version="s3"`): header-signed requests
of every shape (bucket-level, object, sub-resources) and presigned V2 URLs."""

import time
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import USER, make_client


@pytest.fixture
def v2(server):
    return make_client(server, signature_version="s3")


@pytest.mark.ops("CreateBucket", "PutObject", "GetObject", "HeadObject", "ListObjectsV2", "ListObjects", "PutObjectTagging", "GetObjectTagging", "DeleteObject", "DeleteBucket")
def test_v2_header_signed_requests(v2):
    bucket = "v2-" + uuid.uuid4().hex[:12]
    v2.create_bucket(Bucket=bucket)
    key = "dir with space/ünïcode+plus.txt"
    v2.put_object(Bucket=bucket, Key=key, Body=b"signed v2", ContentType="text/plain", Metadata={"owner": "v2"})
    got = v2.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"signed v2"
    assert got["Metadata"] == {"owner": "v2"}
    assert v2.head_object(Bucket=bucket, Key=key)["ContentType"] == "text/plain"
    assert [o["Key"] for o in v2.list_objects_v2(Bucket=bucket, Prefix="dir ")["Contents"]] == [key]
    assert [o["Key"] for o in v2.list_objects(Bucket=bucket)["Contents"]] == [key]
    v2.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert v2.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [{"Key": "k", "Value": "v"}]
    v2.delete_object(Bucket=bucket, Key=key)
    v2.delete_bucket(Bucket=bucket)


@pytest.mark.ops("GetObject", "PutObject")
def test_v2_presigned_urls_and_bad_signatures(server, v2, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p.txt", Body=b"presigned")
    url = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p.txt"}, ExpiresIn=120)
    assert "AWSAccessKeyId=" in url and "Signature=" in url
    assert urllib.request.urlopen(url).read() == b"presigned"
    # V2 signs the Content-Type: sign one and send the same one.
    put = v2.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up.txt", "ContentType": "text/plain"}, ExpiresIn=120)
    urllib.request.urlopen(urllib.request.Request(put, data=b"uploaded", method="PUT", headers={"Content-Type": "text/plain"})).read()
    assert s3.get_object(Bucket=bucket, Key="up.txt")["Body"].read() == b"uploaded"
    # A tampered signature, an expired URL, a wrong secret.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url.replace("Signature=", "Signature=AA"))
    assert e.value.code == 403
    old = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p.txt"}, ExpiresIn=1)
    time.sleep(2)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(old)
    assert e.value.code == 403
    wrong = boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=USER,
        aws_secret_access_key="not-the-secret",
        region_name="us-east-1",
        config=Config(signature_version="s3", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as ce:
        wrong.get_object(Bucket=bucket, Key="p.txt")
    assert ce.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
