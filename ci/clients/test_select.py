"""SelectObjectContent through boto3, as SDK users filter CSV, JSON and Parquet where it lives."""

import bz2
import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError


def select(s3, bucket, key, sql, input_ser, output_ser=None, **kw):
    """Run a query; return (records bytes, stats details, event types in order)."""
    r = s3.select_object_content(
        Bucket=bucket,
        Key=key,
        Expression=sql,
        ExpressionType="SQL",
        InputSerialization=input_ser,
        OutputSerialization=output_ser or {"CSV": {}},
        **kw,
    )
    records, stats, kinds = b"", None, []
    for event in r["Payload"]:
        kind = next(iter(event))
        kinds.append(kind)
        if kind == "Records":
            records += event["Records"]["Payload"]
        elif kind == "Stats":
            stats = event["Stats"]["Details"]
    return records, stats, kinds


PEOPLE = b"name,age,city\nalice,30,Oslo\nbob,25,Rome\ncarol,41,Oslo\n"


@pytest.mark.ops("SelectObjectContent")
def test_csv_filter_and_stats(s3, bucket):
    s3.put_object(Bucket=bucket, Key="people.csv", Body=PEOPLE)
    out, stats, kinds = select(
        s3,
        bucket,
        "people.csv",
        "SELECT s.name, s.age FROM S3Object s WHERE s.city = 'Oslo' AND CAST(s.age AS INT) > 18",
        {"CSV": {"FileHeaderInfo": "USE"}},
    )
    assert out == b"alice,30\ncarol,41\n"
    assert kinds[-2:] == ["Stats", "End"]
    assert stats["BytesScanned"] == len(PEOPLE)
    assert stats["BytesProcessed"] == len(PEOPLE)
    assert stats["BytesReturned"] == len(out)


@pytest.mark.ops("SelectObjectContent")
def test_json_output_and_aggregate(s3, bucket):
    s3.put_object(Bucket=bucket, Key="people.csv", Body=PEOPLE)
    out, _, _ = select(
        s3,
        bucket,
        "people.csv",
        "SELECT COUNT(*) AS n, AVG(CAST(age AS INT)) AS mean FROM S3Object",
        {"CSV": {"FileHeaderInfo": "USE"}},
        {"JSON": {}},
    )
    assert json.loads(out) == {"n": 3, "mean": 32}


@pytest.mark.ops("SelectObjectContent")
def test_json_lines_gzip(s3, bucket):
    lines = b"".join(json.dumps({"id": i, "tags": ["a", "b"][: i % 3], "user": {"id": i * 7}}).encode() + b"\n" for i in range(5000))
    s3.put_object(Bucket=bucket, Key="events.json.gz", Body=gzip.compress(lines))
    out, stats, _ = select(
        s3,
        bucket,
        "events.json.gz",
        "SELECT s.id, s.user.id AS uid FROM S3Object s WHERE s.id >= 4998",
        {"JSON": {"Type": "LINES"}, "CompressionType": "GZIP"},
        {"JSON": {}},
    )
    assert [json.loads(line) for line in out.splitlines()] == [{"id": 4998, "uid": 34986}, {"id": 4999, "uid": 34993}]
    assert stats["BytesProcessed"] == len(lines)
    assert stats["BytesScanned"] < stats["BytesProcessed"]


@pytest.mark.ops("SelectObjectContent")
def test_csv_bzip2_multi_stream(s3, bucket):
    # pbzip2 and `cat a.bz2 b.bz2` make files of several streams; all of them are data.
    rows = [f"{i},{'x' * (i % 13)},{i % 10}\n".encode() for i in range(40_000)]
    half = len(rows) // 2
    body = bz2.compress(b"".join(rows[:half])) + bz2.compress(b"".join(rows[half:]))
    s3.put_object(Bucket=bucket, Key="rows.csv.bz2", Body=body)
    out, stats, _ = select(
        s3,
        bucket,
        "rows.csv.bz2",
        "SELECT COUNT(*), SUM(CAST(_3 AS INT)), MAX(CAST(_1 AS INT)) FROM S3Object WHERE _3 = '7'",
        {"CSV": {"FileHeaderInfo": "NONE"}, "CompressionType": "BZIP2"},
    )
    assert out == f"4000,28000,39997\n".encode()
    assert stats["BytesScanned"] == len(body)
    assert stats["BytesProcessed"] == sum(len(r) for r in rows)


@pytest.mark.ops("SelectObjectContent")
def test_json_document_array_path(s3, bucket):
    doc = {"events": [{"type": "click", "n": 1}, {"type": "view", "n": 2}, {"type": "click", "n": 3}]}
    s3.put_object(Bucket=bucket, Key="doc.json", Body=json.dumps(doc).encode())
    out, _, _ = select(
        s3,
        bucket,
        "doc.json",
        "SELECT e.n FROM S3Object[*].events[*] e WHERE e.type = 'click'",
        {"JSON": {"Type": "DOCUMENT"}},
    )
    assert out == b"1\n3\n"


@pytest.mark.ops("SelectObjectContent")
def test_parquet_erasure_coded(s3, bucket):
    # Large enough to be erasure coded across the drives, with several row groups.
    n = 200_000
    t = pa.table({"id": pa.array(range(n), pa.int64()), "v": pa.array([i % 97 for i in range(n)], pa.int32()), "s": [f"row{i}" for i in range(n)]})
    buf = io.BytesIO()
    pq.write_table(t, buf, row_group_size=50_000)
    data = buf.getvalue()
    s3.put_object(Bucket=bucket, Key="t.parquet", Body=data)
    out, stats, _ = select(
        s3,
        bucket,
        "t.parquet",
        "SELECT COUNT(*), SUM(v), MAX(id) FROM S3Object WHERE v = 3",
        {"Parquet": {}},
    )
    want = [i for i in range(n) if i % 97 == 3]
    assert out == f"{len(want)},{3 * len(want)},{max(want)}\n".encode()
    # Only the referenced columns' chunks (and the footer) are read, not the string column.
    assert stats["BytesScanned"] < len(data)


@pytest.mark.ops("SelectObjectContent")
def test_scan_range_splits_records(s3, bucket):
    body = b"".join(b"%06d\n" % i for i in range(1000))
    s3.put_object(Bucket=bucket, Key="n.csv", Body=body)
    total = b""
    step = 1000
    for start in range(0, len(body), step):
        out, _, _ = select(s3, bucket, "n.csv", "SELECT _1 FROM S3Object", {"CSV": {}}, ScanRange={"Start": start, "End": start + step - 1})
        total += out
    # Every record exactly once across the ranges.
    assert total == body


@pytest.mark.ops("SelectObjectContent")
def test_errors(s3, bucket):
    s3.put_object(Bucket=bucket, Key="people.csv", Body=PEOPLE)
    with pytest.raises(ClientError) as e:
        select(s3, bucket, "people.csv", "SELECT FROM S3Object WHERE", {"CSV": {}})
    assert e.value.response["Error"]["Code"] == "ParseUnexpectedToken"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        select(s3, bucket, "people.csv", "SELECT s.nope FROM S3Object s", {"CSV": {"FileHeaderInfo": "USE"}})
    assert e.value.response["Error"]["Code"] == "InvalidColumnIndex"
    with pytest.raises(ClientError) as e:
        select(s3, bucket, "missing.csv", "SELECT * FROM S3Object", {"CSV": {}})
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    # A cast that fails mid-scan arrives as an error event after the stream began.
    s3.put_object(Bucket=bucket, Key="bad.csv", Body=b"1\n2\nx\n")
    with pytest.raises(Exception) as e:
        select(s3, bucket, "bad.csv", "SELECT CAST(_1 AS INT) FROM S3Object", {"CSV": {}})
    assert "CastFailed" in str(e.value)


@pytest.mark.ops("SelectObjectContent")
def test_request_progress(s3, bucket):
    s3.put_object(Bucket=bucket, Key="people.csv", Body=PEOPLE)
    r = s3.select_object_content(
        Bucket=bucket,
        Key="people.csv",
        Expression="SELECT COUNT(*) FROM S3Object",
        ExpressionType="SQL",
        InputSerialization={"CSV": {"FileHeaderInfo": "USE"}},
        OutputSerialization={"JSON": {}},
        RequestProgress={"Enabled": True},
    )
    events = list(r["Payload"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[-3:] == ["Progress", "Stats", "End"]
    progress = events[-3]["Progress"]["Details"]
    assert progress["BytesScanned"] == len(PEOPLE)
    assert json.loads(b"".join(e["Records"]["Payload"] for e in events if "Records" in e)) == {"_1": 3}
