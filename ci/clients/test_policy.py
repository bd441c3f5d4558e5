"""Bucket policies through boto3: the public-dataset case (anonymous GET and LIST of one
bucket, granted by "Principal": "*"), validation, and removal."""

import json
import uuid

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError


def anonymous(server):
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def public_read(bucket):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/public/*"]},
                {
                    "Sid": "PublicList",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{bucket}",
                    "Condition": {"StringLike": {"s3:prefix": "public/*"}},
                },
            ],
        }
    )


@pytest.mark.ops("PutBucketPolicy", "GetBucketPolicy", "GetBucketPolicyStatus", "DeleteBucketPolicy")
def test_public_read_bucket_serves_anonymous_gets_and_lists(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="public/a.txt", Body=b"open data")
    s3.put_object(Bucket=bucket, Key="private/b.txt", Body=b"secret")
    anon = anonymous(server)
    # No policy: anonymous requests are refused.
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket=bucket, Key="public/a.txt")
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy_status(Bucket=bucket)
    assert code(e) == "NoSuchBucketPolicy"

    policy = public_read(bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(policy)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True

    assert anon.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"open data"
    assert anon.head_object(Bucket=bucket, Key="public/a.txt")["ContentLength"] == 9
    listed = anon.list_objects_v2(Bucket=bucket, Prefix="public/")
    assert [o["Key"] for o in listed["Contents"]] == ["public/a.txt"]
    # Exactly what the policy grants, nothing more.
    for call in (
        lambda: anon.get_object(Bucket=bucket, Key="private/b.txt"),
        lambda: anon.list_objects_v2(Bucket=bucket),
        lambda: anon.list_objects_v2(Bucket=bucket, Prefix="private/"),
        lambda: anon.put_object(Bucket=bucket, Key="public/new.txt", Body=b"x"),
        lambda: anon.delete_object(Bucket=bucket, Key="public/a.txt"),
        lambda: anon.get_bucket_policy(Bucket=bucket),
        lambda: anon.list_buckets(),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"open data"

    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=bucket)
    assert code(e) == "NoSuchBucketPolicy"
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket=bucket, Key="public/a.txt")
    assert code(e) == "AccessDenied"


@pytest.mark.ops("PutBucketPolicy")
def test_source_ip_conditions_see_the_client_address(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    anon = anonymous(server)

    def allow_from(cidr):
        s3.put_bucket_policy(
            Bucket=bucket,
            Policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "s3:GetObject",
                            "Resource": f"arn:aws:s3:::{bucket}/*",
                            "Condition": {"IpAddress": {"aws:SourceIp": cidr}},
                        }
                    ],
                }
            ),
        )

    allow_from("127.0.0.0/8")
    assert anon.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    allow_from("203.0.113.0/24")
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket=bucket, Key="k")
    assert code(e) == "AccessDenied"


@pytest.mark.ops("PutBucketPolicy", "CopyObject")
def test_anonymous_copy_needs_read_access_to_its_source(server, s3, bucket):
    # A drop box anyone may write to must not let anyone copy private objects into it.
    s3.put_object(Bucket=bucket, Key="private/secret.txt", Body=b"secret")
    s3.put_object(Bucket=bucket, Key="public/open.txt", Body=b"open")
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/dropbox/*"},
                    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/public/*"},
                ],
            }
        ),
    )
    anon = anonymous(server)
    anon.put_object(Bucket=bucket, Key="dropbox/upload.txt", Body=b"hello")
    with pytest.raises(ClientError) as e:
        anon.copy_object(Bucket=bucket, Key="dropbox/stolen.txt", CopySource={"Bucket": bucket, "Key": "private/secret.txt"})
    assert code(e) == "AccessDenied"
    anon.copy_object(Bucket=bucket, Key="dropbox/copied.txt", CopySource={"Bucket": bucket, "Key": "public/open.txt"})
    assert s3.get_object(Bucket=bucket, Key="dropbox/copied.txt")["Body"].read() == b"open"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="dropbox/stolen.txt")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.ops("PutBucketPolicy")
def test_bucket_policy_is_validated(s3, bucket):
    other = "x" + uuid.uuid4().hex[:12]
    bad = [
        "not json",
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}),
        json.dumps({"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{other}/*"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*", "Condition": {"Fuzzy": {"a": "b"}}}]}),
    ]
    for doc in bad:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_policy(Bucket=bucket, Policy=doc)
        assert code(e) == "MalformedPolicy", doc
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        s3.put_bucket_policy(Bucket="no-such-" + uuid.uuid4().hex[:12], Policy=public_read(bucket))
    assert code(e) == "NoSuchBucket"
