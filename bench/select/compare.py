#!/usr/bin/env python3
"""S3 Select against the engines users would otherwise run: the same queries over the same
lineitem data (quarry-datasets), timed in one run, medians of --repeat runs.

  quarry-select   SelectObjectContent on Quarry (CSV, JSON lines and Parquet objects), boto3
                  client; also its time to first record, and 8 queries at once
  get+pyarrow     GET the whole object, then filter/aggregate it with pyarrow (what a
                  client does without Select)
  duckdb, chdb    the same SQL on the local file (the bar: an engine next to the data);
                  DuckDB with all cores and with one thread

Run with bench/select/run.sh (makes a venv with boto3, pyarrow, duckdb, chdb); prints a
Markdown table of median seconds and ratios against quarry-select.
"""

import argparse
import concurrent.futures
import io
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from botocore.config import Config

# (name, S3 Select SQL, DuckDB/ClickHouse SQL over {src}, pyarrow fallback)
QUERIES = [
    (
        "filter 1% + project",
        "SELECT l_orderkey, l_extendedprice FROM S3Object WHERE CAST(l_quantity AS INT) = 7 AND l_shipmode = 'AIR'",
        "SELECT l_orderkey, l_extendedprice FROM {src} WHERE l_quantity = 7 AND l_shipmode = 'AIR'",
        lambda t: t.filter(pc.and_(pc.equal(t["l_quantity"], 7), pc.equal(t["l_shipmode"], "AIR"))).select(["l_orderkey", "l_extendedprice"]),
    ),
    (
        "aggregate",
        "SELECT COUNT(*), SUM(CAST(l_extendedprice AS FLOAT)), AVG(CAST(l_discount AS FLOAT)) FROM S3Object WHERE l_returnflag = 'R'",
        "SELECT COUNT(*), SUM(l_extendedprice), AVG(l_discount) FROM {src} WHERE l_returnflag = 'R'",
        lambda t: pc.sum(t.filter(pc.equal(t["l_returnflag"], "R"))["l_extendedprice"]),
    ),
    (
        "project 3 columns",
        "SELECT l_orderkey, l_partkey, l_shipdate FROM S3Object",
        "SELECT l_orderkey, l_partkey, l_shipdate FROM {src}",
        lambda t: t.select(["l_orderkey", "l_partkey", "l_shipdate"]),
    ),
    (
        "count(*)",
        "SELECT COUNT(*) FROM S3Object",
        "SELECT COUNT(*) FROM {src}",
        lambda t: t.num_rows,
    ),
]


BUCKET = "select-bench"


def start_server(binary, data_dir):
    env = dict(os.environ, QUARRY_ROOT_USER="bench", QUARRY_ROOT_PASSWORD="bench-secret", QUARRY_LOG="warn")
    proc = subprocess.Popen([binary, "server", data_dir, "--address", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    m = re.match(r"quarry listening on (http://\S+)", proc.stdout.readline())
    assert m, "server did not start"
    return proc, m.group(1)


def timed(fn, repeat):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


INPUT = {
    "csv": {"CSV": {"FileHeaderInfo": "USE"}},
    "jsonl": {"JSON": {"Type": "LINES"}},
    "parquet": {"Parquet": {}},
}


def json_sql(sql):
    """The CSV query for JSON input: values are typed there, so no CASTs; paths via `s.`."""
    sql = re.sub(r"CAST\((\w+) AS \w+\)", r"\1", sql)
    sql = re.sub(r"\b(l_\w+)", r"s.\1", sql)
    return sql.replace("FROM S3Object", "FROM S3Object s")


def select(s3, bucket, key, sql, fmt, first=None):
    """Run a query; returns bytes of records. `first`, a list, gets the seconds to the first
    Records event."""
    t0 = time.perf_counter()
    r = s3.select_object_content(Bucket=bucket, Key=key, Expression=sql, ExpressionType="SQL", InputSerialization=INPUT[fmt], OutputSerialization={"CSV": {}})
    n = 0
    for ev in r["Payload"]:
        if "Records" in ev:
            if first is not None and n == 0:
                first.append(time.perf_counter() - t0)
            n += len(ev["Records"]["Payload"])
    return n


def get_and_parse(s3, bucket, key, fmt, fallback):
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if fmt == "csv":
        t = pacsv.read_csv(io.BytesIO(body))
    elif fmt == "jsonl":
        t = pajson.read_json(io.BytesIO(body))
    else:
        t = pq.read_table(io.BytesIO(body))
    return fallback(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quarry", default="target/release/quarry")
    ap.add_argument("--datasets", default="target/release/quarry-datasets")
    args = ap.parse_args()

    import chdb
    import duckdb

    tmp = tempfile.mkdtemp(prefix="quarry-select-bench-")
    procs = []
    try:
        files = {}
        for fmt in ("csv", "jsonl", "parquet"):
            subprocess.run([args.datasets, "lineitem", "--format", fmt, "--rows", str(args.rows), "--out", os.path.join(tmp, fmt)], check=True, stdout=subprocess.DEVNULL)
            files[fmt] = os.path.join(tmp, fmt, "lineitem", "part-00000." + fmt)
        proc, url = start_server(args.quarry, os.path.join(tmp, "data"))
        procs.append(proc)
        cfg = Config(s3={"addressing_style": "path"}, read_timeout=600, max_pool_connections=16)
        s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="bench", aws_secret_access_key="bench-secret", region_name="us-east-1", config=cfg)
        s3.create_bucket(Bucket=BUCKET)
        for fmt, path in files.items():
            s3.upload_file(path, BUCKET, "lineitem." + fmt)
        sizes = {fmt: os.path.getsize(p) for fmt, p in files.items()}
        cores = os.cpu_count()
        print(f"lineitem: {args.rows} rows; " + ", ".join(f"{f} {v / 2**20:.0f} MiB" for f, v in sizes.items()) + f"; {cores} cores; median of {args.repeat}\n")
        print("| query | format | quarry-select | MB/s | first record | get+pyarrow | duckdb (local) | duckdb 1 thread | chdb (local) |")
        print("|---|---|---|---|---|---|---|---|---|")
        con = duckdb.connect()
        con1 = duckdb.connect()
        con1.execute("SET threads = 1")
        for name, ours, theirs, fallback in QUERIES:
            for fmt, path in files.items():
                duck_src = {"csv": f"read_csv_auto('{path}')", "jsonl": f"read_json_auto('{path}')", "parquet": f"read_parquet('{path}')"}[fmt]
                ch_src = {"csv": f"file('{path}', CSVWithNames)", "jsonl": f"file('{path}', JSONEachRow)", "parquet": f"file('{path}', Parquet)"}[fmt]
                sql = json_sql(ours) if fmt == "jsonl" else ours
                first = []
                q = timed(lambda: select(s3, BUCKET, "lineitem." + fmt, sql, fmt, first), args.repeat)
                g = timed(lambda: get_and_parse(s3, BUCKET, "lineitem." + fmt, fmt, fallback), args.repeat)
                # Every engine writes its result as CSV text, as Select does.
                duck_sql = f"COPY ({theirs.format(src=duck_src)}) TO '/dev/null' (FORMAT CSV)"
                d = timed(lambda: con.execute(duck_sql).fetchall(), args.repeat)
                d1 = timed(lambda: con1.execute(duck_sql).fetchall(), args.repeat)
                c = timed(lambda: chdb.query(theirs.format(src=ch_src), "CSV"), args.repeat)
                cell = lambda v: f"{v:.3f} s ({v / q:.2f}x)"
                mbs = sizes[fmt] / q / 1e6
                print(f"| {name} | {fmt} | {q:.3f} s | {mbs:.0f} | {statistics.median(first) * 1000:.0f} ms | {cell(g)} | {cell(d)} | {cell(d1)} | {cell(c)} |")
        # Concurrency: the filter query, 1 and 8 at once; MB/s is input bytes over wall time.
        print("\n| concurrent filter queries | format | wall | MB/s scanned | MB/s per core |")
        print("|---|---|---|---|---|")
        name, ours, _, _ = QUERIES[0]
        for fmt in files:
            sql = json_sql(ours) if fmt == "jsonl" else ours
            for n in (1, 8):
                def batch():
                    with concurrent.futures.ThreadPoolExecutor(n) as ex:
                        list(ex.map(lambda _: select(s3, BUCKET, "lineitem." + fmt, sql, fmt), range(n)))
                w = timed(batch, max(1, args.repeat // 2))
                rate = n * sizes[fmt] / w / 1e6
                print(f"| {n} | {fmt} | {w:.3f} s | {rate:.0f} | {rate / cores:.0f} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
