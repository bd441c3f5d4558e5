"""Virtual-host-style addressing (`bucket.domain`) with a configured --domain."""

import os
import socket
import tempfile

import boto3
import pytest
from botocore.config import Config

from conftest import SECRET, USER, Server

DOMAIN = "quarry.test"


@pytest.fixture
def vhost_server(monkeypatch):
    binary = os.environ.get("QUARRY_BIN")
    tmp = tempfile.mkdtemp(prefix="quarry-vhost-")
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and (host == DOMAIN or host.endswith("." + DOMAIN)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    srv = Server(binary, os.path.join(tmp, "data"), extra_args=["--domain", DOMAIN])
    yield srv
    srv.stop()


@pytest.mark.ops("CreateBucket", "PutObject", "GetObject", "ListObjectsV2")
def test_virtual_host_and_path_style_together(vhost_server):
    endpoint = f"http://{DOMAIN}:{vhost_server.port}"
    kw = dict(endpoint_url=endpoint, aws_access_key_id=USER, aws_secret_access_key=SECRET, region_name="us-east-1")
    vh = boto3.client("s3", config=Config(s3={"addressing_style": "virtual"}), **kw)
    path = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kw)
    vh.create_bucket(Bucket="vhost-bucket")
    vh.put_object(Bucket="vhost-bucket", Key="a/b.txt", Body=b"via virtual host")
    assert path.get_object(Bucket="vhost-bucket", Key="a/b.txt")["Body"].read() == b"via virtual host"
    assert [o["Key"] for o in vh.list_objects_v2(Bucket="vhost-bucket")["Contents"]] == ["a/b.txt"]
