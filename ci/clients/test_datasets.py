"""quarry-datasets output read by the tools that consume it: pyarrow (Parquet, CSV),
Python's json and tarfile, a TFRecord reader, and an upload straight to the server."""

import io
import json
import os
import struct
import subprocess
import tarfile

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from conftest import SECRET, USER

BIN = os.environ.get("QUARRY_DATASETS_BIN", os.path.join(os.path.dirname(os.environ.get("QUARRY_BIN", "")), "quarry-datasets"))


def gen(tmp_path, *args):
    r = subprocess.run([BIN, *args, "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return [line.split()[0] for line in r.stdout.splitlines()]


def test_lineitem_parquet_and_csv_agree(tmp_path):
    [pfile] = gen(tmp_path, "lineitem", "--format", "parquet", "--rows", "5000", "--row-group-rows", "1000", "--seed", "3")
    [cfile] = gen(tmp_path, "lineitem", "--format", "csv", "--rows", "5000", "--seed", "3")
    meta = pq.ParquetFile(pfile).metadata
    assert meta.num_rows == 5000 and meta.num_row_groups == 5
    stats = meta.row_group(0).column(0).statistics
    assert stats is not None and stats.has_min_max and stats.min == 1
    t = pq.read_table(pfile)
    assert t.schema.field("l_shipdate").type == "date32[day]"
    c = pacsv.read_csv(cfile)
    assert c.num_rows == 5000
    assert c.column("l_orderkey").to_pylist() == t.column("l_orderkey").to_pylist()
    assert c.column("l_comment").to_pylist() == t.column("l_comment").to_pylist()
    assert [str(d) for d in t.column("l_shipdate").to_pylist()[:50]] == [str(d) for d in c.column("l_shipdate").to_pylist()[:50]]


def test_events_lines_and_document(tmp_path):
    [lines] = gen(tmp_path, "events", "--format", "jsonl", "--rows", "400")
    [doc] = gen(tmp_path, "events", "--format", "document", "--rows", "400")
    evs = [json.loads(l) for l in open(lines, encoding="utf-8")]
    assert len(evs) == 400
    assert json.load(open(doc, encoding="utf-8"))["events"] == evs
    assert any("geo" not in e for e in evs) and any(e.get("items") for e in evs)
    assert any(not e["user"]["name"].isascii() for e in evs)


def test_tar_shards_read_by_tarfile(tmp_path):
    files = gen(tmp_path, "shards", "--format", "tar", "--files", "2", "--rows", "10", "--sample-size", "5000")
    assert len(files) == 2
    with tarfile.open(files[1]) as tf:
        names = tf.getnames()
        assert len(names) == 20 and names[0] == "00001000000.bin" and names[1] == "00001000000.cls"
        assert len(tf.extractfile(names[0]).read()) == 5000
        assert 0 <= int(tf.extractfile(names[1]).read()) < 1000


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_tfrecord_framing_and_crcs(tmp_path):
    [f] = gen(tmp_path, "shards", "--format", "tfrecord", "--rows", "4", "--sample-size", "300")
    data = open(f, "rb").read()
    at, n = 0, 0
    while at < len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        assert struct.unpack_from("<I", data, at + 8)[0] == masked(data[at : at + 8])
        rec = data[at + 12 : at + 12 + length]
        assert struct.unpack_from("<I", data, at + 12 + length)[0] == masked(rec)
        assert b"image" in rec and b"label" in rec
        at += 16 + length
        n += 1
    assert n == 4


@pytest.mark.ops("PutObject", "CreateBucket")
def test_upload_to_endpoint(server, s3, tmp_path):
    r = subprocess.run(
        [BIN, "lineitem", "--format", "csv", "--rows", "100", "--files", "2", "--endpoint", server.url, "--bucket", "datasets-up", "--prefix", "tpch/", "--access-key", USER, "--secret-key", SECRET],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="datasets-up")["Contents"]]
    assert keys == ["tpch/lineitem/part-00000.csv", "tpch/lineitem/part-00001.csv"]
    [local] = gen(tmp_path, "lineitem", "--format", "csv", "--rows", "100", "--files", "1")
    body = s3.get_object(Bucket="datasets-up", Key=keys[1])["Body"].read().decode()
    assert body.splitlines()[0].startswith("l_orderkey,") and body.splitlines()[-1] == open(local).read().splitlines()[-1]
    for k in keys:
        s3.delete_object(Bucket="datasets-up", Key=k)
    s3.delete_bucket(Bucket="datasets-up")


def test_all_datasets_in_one_command(tmp_path):
    files = gen(tmp_path, "all", "--scale", "0.0005", "--sample-size", "2000")
    names = sorted(os.path.relpath(f, tmp_path) for f in files)
    assert names == sorted([
        "lineitem/part-00000.csv", "lineitem/part-00000.jsonl", "lineitem/part-00000.parquet",
        "events/part-00000.jsonl", "events/part-00000.json",
        "shards/shard-00000.tar", "shards/shard-00000.tfrecord",
    ])
    assert pq.ParquetFile(os.path.join(tmp_path, "lineitem/part-00000.parquet")).metadata.num_rows == 3000
