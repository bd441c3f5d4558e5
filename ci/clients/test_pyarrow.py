"""pyarrow's S3FileSystem: write a Parquet dataset, then read it back the analytics way
(HEAD, footer by suffix range, column chunks by ranges)."""

import pytest
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs

from conftest import SECRET, USER


def s3fs(server):
    return fs.S3FileSystem(access_key=USER, secret_key=SECRET, endpoint_override=server.url.replace("http://", ""), scheme="http", region="us-east-1", allow_bucket_creation=False)


@pytest.mark.ops("PutObject", "HeadObject", "GetObject")
def test_parquet_write_read(server, bucket):
    f = s3fs(server)
    n = 200_000
    table = pa.table({"id": pa.array(range(n), pa.int64()), "name": pa.array([f"row-{i}" for i in range(n)]), "score": pa.array([i * 0.5 for i in range(n)])})
    pq.write_table(table, f"{bucket}/tables/t.parquet", filesystem=f, row_group_size=50_000)
    info = f.get_file_info(f"{bucket}/tables/t.parquet")
    assert info.size > 0
    back = pq.read_table(f"{bucket}/tables/t.parquet", filesystem=f)
    assert back.equals(table)
    cols = pq.read_table(f"{bucket}/tables/t.parquet", filesystem=f, columns=["score"], filters=[("id", ">=", 150_000)])
    assert cols.num_rows == 50_000 and cols.column_names == ["score"]


@pytest.mark.ops("ListObjectsV2", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "DeleteObject")
def test_dataset_listing_and_streams(server, bucket):
    f = s3fs(server)
    for part in range(3):
        t = pa.table({"v": list(range(1000))})
        pq.write_table(t, f"{bucket}/ds/part={part}/data.parquet", filesystem=f)
    d = ds.dataset(f"{bucket}/ds", filesystem=f, format="parquet", partitioning="hive")
    assert d.to_table().num_rows == 3000
    with f.open_output_stream(f"{bucket}/raw.bin") as out:
        out.write(b"x" * (12 * 1024 * 1024))
    with f.open_input_file(f"{bucket}/raw.bin") as inp:
        inp.seek(12 * 1024 * 1024 - 3)
        assert inp.read() == b"xxx"
    selector = fs.FileSelector(f"{bucket}/ds", recursive=True)
    paths = sorted(i.path for i in f.get_file_info(selector) if i.type == fs.FileType.File)
    assert paths == [f"{bucket}/ds/part={p}/data.parquet" for p in range(3)]
    f.delete_file(f"{bucket}/raw.bin")
