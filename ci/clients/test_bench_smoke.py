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
    cmd = [BENCH, "run", "--endpoint", server.url, "--access-key", USER, "--secret-key", secret, "--duration", "0.3", "--rounds", "1", "--objects", "8", "--json", str(out), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), r.stdout


def test_every_workload_produces_figures(server, tmp_path):
    rows, table = bench(server, tmp_path, "--workloads", "put,get,head,list,delete,mixed", "--sizes", "4KiB,200KiB", "--concurrency", "2", "--ceiling", "--bucket", "bench-smoke")
    quarry = [r for r in rows if r["target"] == "A"]
    assert {r["workload"] for r in quarry} == {"put", "get", "head", "list", "delete", "mixed"}
    for r in quarry:
        assert r["ops_per_s_median"] > 0, r
        assert r["errors"] == 0, r
        assert r["latency_ms"]["p50"] > 0 and r["fraction_of_ceiling"] > 0, r
    assert "×ceiling" in table


def test_failures_are_counted(server, s3, bucket, tmp_path):
    # Wrong credentials make the preparation fail loudly rather than report zeros.
    cmd = [BENCH, "run", "--endpoint", server.url, "--access-key", USER, "--secret-key", "wrong-secret", "--duration", "0.2", "--rounds", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "403" in r.stderr
    # GETs of objects that were never written are errors in the report, not silent zeros.
    rows, table = bench(server, tmp_path, "--workloads", "get", "--concurrency", "1", "--bucket", bucket, "--skip-prepare")
    assert rows[0]["errors"] > 0 and rows[0]["ops_per_s_median"] == 0
    assert "404" in rows[0]["first_error"] and "first error" in table
