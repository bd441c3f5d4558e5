"""quarry-bench smoke run: every workload for a fraction of a second against the test
server, asserting that figures are produced and that failures are counted, not hidden."""

import json
import os
import subprocess

import pytest

from conftest import SECRET, USER

BENCH = os.environ.get("QUARRY_BENCH_BIN", os.path.join(os.path.dirname(os.environ.get("QUARRY_BIN", "")), "quarry-bench"))


def bench(server, tmp_path, *extra, secret=SECRET):
    out = tmp_path / "bench.json"
    objects = [] if "--objects" in extra else ["--objects", "8"]
    cmd = [BENCH, "run", "--endpoint", server.url, "--access-key", USER, "--secret-key", secret, "--duration", "0.3", "--rounds", "1", *objects, "--json", str(out), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), r.stdout


def test_every_workload_produces_figures(server, tmp_path):
    chart = tmp_path / "chart.svg"
    rows, table = bench(
        server, tmp_path,
        "--workloads", "put,get,rangeget,head,list,delete,mixed,parquet,shards",
        "--sizes", "4KiB,200KiB", "--concurrency", "2", "--ceiling", "--bucket", "bench-smoke",
        "--range-size", "1KiB", "--parquet-rows", "20000", "--parquet-row-group-rows", "5000", "--shard-samples", "4",
        "--chart", str(chart),
    )
    quarry = [r for r in rows if r["target"] == "A"]
    assert {r["workload"] for r in quarry} == {"put", "get", "rangeget", "head", "list", "delete", "mixed", "parquet", "shards"}
    for r in quarry:
        assert r["ops_per_s_median"] > 0, r
        assert r["errors"] == 0, r
        assert r["latency_ms"]["p50"] > 0 and r["fraction_of_ceiling"] > 0, r
    assert all(r["samples_per_s_median"] > 0 for r in quarry if r["workload"] == "shards")
    assert "×ceiling" in table
    assert chart.read_text().startswith("<svg") and "parquet 4KiB c=2 A" in chart.read_text()


def test_multipart_puts_ranged_shards_and_delimited_lists(server, tmp_path):
    rows, _ = bench(server, tmp_path, "--workloads", "put", "--sizes", "11MiB", "--multipart-part-size", "5MiB", "--concurrency", "1", "--bucket", "bench-mpu")
    assert rows[0]["errors"] == 0 and rows[0]["ops_per_s_median"] > 0
    rows, _ = bench(server, tmp_path, "--workloads", "shards", "--ranged", "--sizes", "3000", "--shard-samples", "5", "--concurrency", "2", "--bucket", "bench-ranged")
    assert rows[0]["errors"] == 0 and rows[0]["samples_per_s_median"] > 0
    rows, _ = bench(server, tmp_path, "--workloads", "list", "--list-delimiter", "/", "--objects", "150", "--sizes", "1B", "--concurrency", "1", "--bucket", "bench-list")
    assert rows[0]["errors"] == 0 and rows[0]["ops_per_s_median"] > 0


def test_failures_are_counted(server, s3, bucket, tmp_path):
    # Wrong credentials make the preparation fail loudly rather than report zeros.
    cmd = [BENCH, "run", "--endpoint", server.url, "--access-key", USER, "--secret-key", "wrong-secret", "--duration", "0.2", "--rounds", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "403" in r.stderr
    # GETs of objects that were never written are errors in the report, not silent zeros.
    rows, table = bench(server, tmp_path, "--workloads", "get", "--concurrency", "1", "--bucket", bucket, "--skip-prepare")
    assert rows[0]["errors"] > 0 and rows[0]["ops_per_s_median"] == 0
    assert "404" in rows[0]["first_error"] and "first error" in table


def test_suite_quick_writes_json_and_chart(server, tmp_path):
    out = tmp_path / "suite"
    r = subprocess.run([BENCH, "suite", "--endpoint", server.url, "--access-key", USER, "--secret-key", SECRET, "--quick", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = json.loads((out / "results.json").read_text())
    assert {r["workload"] for r in rows} >= {"get", "put", "head", "delete", "mixed", "rangeget", "list", "parquet", "shards"}
    assert all(r["errors"] == 0 for r in rows), [r for r in rows if r["errors"]]
    assert (out / "results.svg").read_text().startswith("<svg")
