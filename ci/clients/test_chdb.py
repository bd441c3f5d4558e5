"""ClickHouse's s3() table function (through chdb) reading CSV and Parquet from quarry."""

import pytest
import io

import chdb
import pyarrow as pa
import pyarrow.parquet as pq

from conftest import SECRET, USER


def query(sql):
    return chdb.query(sql, "CSV").bytes().decode().strip()


@pytest.mark.ops("GetObject", "HeadObject", "ListObjectsV2")
def test_csv_and_parquet(server, s3, bucket):
    rows = "\n".join(f"{i},name{i},{i % 7}" for i in range(10_000))
    s3.put_object(Bucket=bucket, Key="data/t.csv", Body=("id,name,grp\n" + rows + "\n").encode())
    url = f"{server.url}/{bucket}/data/t.csv"
    got = query(f"SELECT count(), sum(id), max(name) FROM s3('{url}', '{USER}', '{SECRET}', 'CSVWithNames')")
    assert got == '10000,49995000,"name9999"'
    got = query(f"SELECT grp, count() FROM s3('{url}', '{USER}', '{SECRET}', 'CSVWithNames') GROUP BY grp ORDER BY grp LIMIT 2")
    assert got.splitlines() == ["0,1429", "1,1429"]

    buf = io.BytesIO()
    pq.write_table(pa.table({"k": list(range(50_000)), "v": [float(i) for i in range(50_000)]}), buf, row_group_size=10_000)
    s3.put_object(Bucket=bucket, Key="data/t.parquet", Body=buf.getvalue())
    purl = f"{server.url}/{bucket}/data/t.parquet"
    assert query(f"SELECT count(), sum(k) FROM s3('{purl}', '{USER}', '{SECRET}', 'Parquet') WHERE k >= 40000") == "10000,449995000"
    # Globs make ClickHouse LIST the prefix first.
    glob = f"{server.url}/{bucket}/data/*.parquet"
    assert query(f"SELECT count() FROM s3('{glob}', '{USER}', '{SECRET}', 'Parquet')") == "50000"


@pytest.mark.ops("PutObject")
def test_insert_through_s3_function(server, bucket):
    url = f"{server.url}/{bucket}/out/written.csv"
    chdb.query(f"INSERT INTO FUNCTION s3('{url}', '{USER}', '{SECRET}', 'CSVWithNames') SELECT number AS n, number * 2 AS m FROM numbers(1000)")
    assert query(f"SELECT sum(m) FROM s3('{url}', '{USER}', '{SECRET}', 'CSVWithNames')") == "999000"
