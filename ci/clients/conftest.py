"""Start one real quarry server for the session and hand out clients for it."""

import os
import re
import shutil
import subprocess
import tempfile
import uuid

import boto3
import pytest
from botocore.config import Config

USER = "quarry-ci"
SECRET = "quarry-ci-secret"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Server:
    def __init__(self, binary, data_dir, extra_args=(), log_level="warn", stderr=None):
        self.data_dir = data_dir
        env = dict(os.environ, QUARRY_ROOT_USER=USER, QUARRY_ROOT_PASSWORD=SECRET, QUARRY_LOG=log_level)
        self.proc = subprocess.Popen(
            [binary, "server", data_dir, "--address", "127.0.0.1:0", *extra_args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            text=True,
        )
        line = self.proc.stdout.readline()
        m = re.match(r"quarry listening on (http://\S+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"unexpected banner: {line!r}")
        self.url = m.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("QUARRY_BIN", os.path.join(REPO, "target", "ci", "quarry"))
    tmp = tempfile.mkdtemp(prefix="quarry-clients-")
    # The clients run against a 4-drive erasure set (2 data + 2 parity): the engine users
    # deploy. QUARRY_CLIENT_DRIVES=1 runs them against a single directory instead.
    drives = int(os.environ.get("QUARRY_CLIENT_DRIVES", "4"))
    data = os.path.join(tmp, "data") if drives == 1 else os.path.join(tmp, "disk{1..." + str(drives) + "}")
    srv = Server(binary, data)
    yield srv
    srv.stop()
    assert srv.proc.returncode == 0, "server did not shut down cleanly on SIGTERM"
    shutil.rmtree(tmp, ignore_errors=True)


def make_client(server, **config):
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=USER,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


@pytest.fixture(scope="session")
def s3(server):
    return make_client(server)


@pytest.fixture
def bucket(s3):
    name = "t-" + uuid.uuid4().hex[:20]
    s3.create_bucket(Bucket=name)
    yield name
    # Empty it the way cleanup tools do: ListObjectVersions, then DeleteObjects.
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        objs = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objs:
            s3.delete_objects(Bucket=name, Delete={"Objects": objs, "Quiet": True})
    for up in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
    s3.delete_bucket(Bucket=name)


def pytest_configure(config):
    config.addinivalue_line("markers", "ops(*names): the S3 operations a test proves work (feeds the README compatibility table)")
