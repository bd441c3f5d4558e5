"""awscli (`aws s3` and `aws s3api`) against quarry, as an operator uses it."""

import filecmp
import json
import os
import subprocess
import sys

import pytest

from conftest import SECRET, USER


def aws(server, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=USER, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    cmd = [sys.executable, "-m", "awscli", "--endpoint-url", server.url, *args]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r


@pytest.mark.ops("PutObject", "GetObject", "ListObjectsV2", "DeleteObject")
def test_cp_ls_rm(server, bucket, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_text("hello from awscli\n")
    aws(server, "s3", "cp", str(src), f"s3://{bucket}/dir/hello.txt")
    out = aws(server, "s3", "ls", f"s3://{bucket}/dir/").stdout
    assert "hello.txt" in out
    dst = tmp_path / "back.txt"
    aws(server, "s3", "cp", f"s3://{bucket}/dir/hello.txt", str(dst))
    assert dst.read_text() == "hello from awscli\n"
    aws(server, "s3", "rm", f"s3://{bucket}/dir/hello.txt")
    assert "hello.txt" not in aws(server, "s3", "ls", f"s3://{bucket}/dir/", check=False).stdout


@pytest.mark.ops("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "HeadObject", "GetObject")
def test_multipart_round_trip_100mib(server, bucket, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1024 * 1024))
    aws(server, "s3", "cp", str(big), f"s3://{bucket}/big.bin")
    head = json.loads(aws(server, "s3api", "head-object", "--bucket", bucket, "--key", "big.bin").stdout)
    assert head["ContentLength"] == 100 * 1024 * 1024
    assert head["ETag"].rstrip('"').split("-")[-1].isdigit(), "uploaded as multipart"
    back = tmp_path / "back.bin"
    aws(server, "s3", "cp", f"s3://{bucket}/big.bin", str(back))
    assert filecmp.cmp(big, back, shallow=False)


@pytest.mark.ops("ListObjectsV2", "PutObject", "GetObject", "DeleteObject")
def test_sync_both_ways(server, bucket, tmp_path):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    files = {"top.txt": b"1", "a/mid.txt": b"22", "a/b/deep.bin": os.urandom(70_000)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    aws(server, "s3", "sync", str(src), f"s3://{bucket}/tree")
    listed = aws(server, "s3", "ls", "--recursive", f"s3://{bucket}/tree/").stdout
    for name in files:
        assert f"tree/{name}" in listed
    dst = tmp_path / "dst"
    aws(server, "s3", "sync", f"s3://{bucket}/tree", str(dst))
    for name, data in files.items():
        assert (dst / name).read_bytes() == data
    # A second sync finds nothing to do.
    again = aws(server, "s3", "sync", str(src), f"s3://{bucket}/tree").stdout
    assert "upload:" not in again
    aws(server, "s3", "rm", "--recursive", f"s3://{bucket}/tree")
    assert aws(server, "s3", "ls", "--recursive", f"s3://{bucket}/", check=False).stdout.strip() == ""


@pytest.mark.ops("GetObject", "HeadBucket")
def test_s3api_errors_surface(server, bucket):
    r = aws(server, "s3api", "get-object", "--bucket", bucket, "--key", "nope", "/dev/null", check=False)
    assert r.returncode != 0 and "NoSuchKey" in r.stderr
    r = aws(server, "s3api", "head-bucket", "--bucket", "does-not-exist-123", check=False)
    assert r.returncode != 0 and "404" in r.stderr
