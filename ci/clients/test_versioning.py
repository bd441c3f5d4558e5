"""Versioning through boto3, as backup tools, data lakes and `aws s3api` users drive it."""

import pytest
from botocore.exceptions import ClientError


def code(exc):
    return exc.value.response["Error"]["Code"]


def status(exc):
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def body(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


@pytest.mark.ops("PutBucketVersioning", "GetBucketVersioning", "PutObject", "GetObject", "HeadObject", "DeleteObject", "ListObjectVersions")
def test_versions_and_delete_markers(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"before")  # the null version
    assert "VersionId" not in s3.head_object(Bucket=bucket, Key="k")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two" * 100_000)["VersionId"]
    assert v1 != v2 and v1 != "null"
    assert body(s3, bucket, "k") == b"two" * 100_000
    assert body(s3, bucket, "k", VersionId=v1) == b"one"
    assert body(s3, bucket, "k", VersionId="null") == b"before"
    assert s3.head_object(Bucket=bucket, Key="k", VersionId=v1)["ContentLength"] == 3
    assert s3.get_object(Bucket=bucket, Key="k")["VersionId"] == v2
    # Ranged read of an old, erasure-coded version.
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v2, Range="bytes=3-8")["Body"].read() == b"twotwo"

    d = s3.delete_object(Bucket=bucket, Key="k")
    assert d["DeleteMarker"] is True and d["VersionId"] not in (v1, v2)
    marker = d["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert code(e) == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k", VersionId=marker)
    assert status(e) == 405
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId="0" * 32)
    assert code(e) == "NoSuchVersion"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert code(e) == "InvalidArgument"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)

    lv = s3.list_object_versions(Bucket=bucket)
    assert [(m["VersionId"], m["IsLatest"]) for m in lv["DeleteMarkers"]] == [(marker, True)]
    assert [(v["VersionId"], v["IsLatest"]) for v in lv["Versions"]] == [(v2, False), (v1, False), ("null", False)]
    # Paging one entry at a time sees the same four, in the same order.
    seen = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 1}):
        entries = page.get("DeleteMarkers", []) + page.get("Versions", [])
        assert len(entries) <= 1
        seen += [e["VersionId"] for e in entries]
    assert seen == [marker, v2, v1, "null"]

    # Removing the marker undeletes; removing a version for good.
    r = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert r["DeleteMarker"] is True and r["VersionId"] == marker
    assert body(s3, bucket, "k") == b"two" * 100_000
    assert s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)["VersionId"] == v2
    assert body(s3, bucket, "k") == b"one"


@pytest.mark.ops("PutBucketVersioning", "PutObject", "DeleteObject", "DeleteObjects", "CopyObject", "PutObjectTagging", "GetObjectTagging")
def test_suspended_copy_tags_and_batch_deletes(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="a", Body=b"first")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="a", Body=b"second")["VersionId"]
    # Restore an old version by copying it onto its key.
    c = s3.copy_object(Bucket=bucket, Key="a", CopySource={"Bucket": bucket, "Key": "a", "VersionId": v1})
    assert c["CopySourceVersionId"] == v1 and c["VersionId"] not in (v1, v2)
    assert body(s3, bucket, "a") == b"first"
    # Tags belong to one version.
    s3.put_object_tagging(Bucket=bucket, Key="a", VersionId=v2, Tagging={"TagSet": [{"Key": "t", "Value": "2"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="a", VersionId=v2)["TagSet"] == [{"Key": "t", "Value": "2"}]
    assert s3.get_object_tagging(Bucket=bucket, Key="a")["TagSet"] == []

    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    # A write while suspended makes the null version; its answer names no version (as AWS),
    # later reads call it "null".
    assert "VersionId" not in s3.put_object(Bucket=bucket, Key="a", Body=b"n1")
    assert "VersionId" not in s3.put_object(Bucket=bucket, Key="a", Body=b"n2")
    assert s3.head_object(Bucket=bucket, Key="a")["VersionId"] == "null"
    ids = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix="a")["Versions"]]
    assert ids[0] == "null" and ids.count("null") == 1 and v1 in ids and v2 in ids

    # DeleteObjects: one without a version (a null marker while suspended), one version.
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "a", "VersionId": v1}]})
    by = {(d["Key"], d.get("VersionId")): d for d in out["Deleted"]}
    assert by[("a", None)]["DeleteMarker"] is True and by[("a", None)]["DeleteMarkerVersionId"] == "null"
    assert ("a", v1) in by
    lv = s3.list_object_versions(Bucket=bucket)
    assert [m["VersionId"] for m in lv["DeleteMarkers"]] == ["null"]
    assert v1 not in [v["VersionId"] for v in lv["Versions"]]
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert code(e) == "BucketNotEmpty"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Off"})
    assert code(e) == "MalformedXML"
