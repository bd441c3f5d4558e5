"""s3cmd signing with Signature Version 2 (`--signature-v2`), as older tooling does: bucket
and object commands and a multipart upload read back byte for byte."""

import os
import subprocess
import sys
import uuid

import pytest
from conftest import SECRET, USER


def s3cmd(server, *args, check=True):
    host = server.url.removeprefix("http://")
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "s3cmd"),
        "--config=/dev/null",
        "--no-ssl",
        f"--host={host}",
        f"--host-bucket={host}",
        f"--access_key={USER}",
        f"--secret_key={SECRET}",
        "--signature-v2",
        "--no-progress",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)


@pytest.mark.ops("CreateBucket", "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "ListObjects", "GetObject", "DeleteObject", "DeleteBucket")
def test_s3cmd_signature_v2(server, s3, tmp_path):
    bucket = "s3cmd-" + uuid.uuid4().hex[:12]
    s3cmd(server, "mb", f"s3://{bucket}")
    small = tmp_path / "a file.txt"
    small.write_bytes(b"hello from s3cmd\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024 + 5))
    s3cmd(server, "put", str(small), f"s3://{bucket}/dir/a file.txt")
    s3cmd(server, "put", "--multipart-chunk-size-mb=5", str(big), f"s3://{bucket}/big.bin")
    listing = s3cmd(server, "ls", "-r", f"s3://{bucket}").stdout
    assert f"s3://{bucket}/dir/a file.txt" in listing and f"s3://{bucket}/big.bin" in listing
    # The multipart upload was stored whole (its ETag is the multipart kind).
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == big.stat().st_size
    assert head["ETag"].strip('"').endswith("-3")
    out = tmp_path / "back.bin"
    s3cmd(server, "get", f"s3://{bucket}/big.bin", str(out))
    assert out.read_bytes() == big.read_bytes()
    s3cmd(server, "del", "--recursive", "--force", f"s3://{bucket}")
    s3cmd(server, "rb", f"s3://{bucket}")
