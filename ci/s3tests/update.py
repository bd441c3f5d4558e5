#!/usr/bin/env python3
"""Take ceph/s3-tests runs (`OUT=dir S3TESTS_NO_GATE=1 ci/s3tests.sh`) into the repo:
add the tests that passed in every run given to the expected-pass lists (`expect-s3.txt`,
`expect-iam.txt`; they only grow: a listed test that failed is reported, never dropped)
and record the first run's figures per file in `figures.tsv`, from which `ci/compat.py`
writes the README's conformance table.

test_s3select.py tests compare two queries' results, and pass when both fail alike. With
`--select-audit FILE` (written by `audit/select_audit.py`), a test_s3select.py test is
listed only if none of its SelectObjectContent calls failed.

    python3 ci/s3tests/update.py [--select-audit FILE] OUT [OUT...]
"""

import csv
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
# test_s3.py items that cannot pass on any server (the harness README: bucket logging
# needs Ceph's client extensions, storage classes, a real IAM account root, an empty
# parametrisation).
CEILING = {"test_s3.py": 743}


def read_list(path):
    if not path.exists():
        return []
    return [l.split("#", 1)[0].strip() for l in path.read_text().splitlines() if l.split("#", 1)[0].strip()]


def main(outs, audit):
    raised = {}
    if audit:
        for r in csv.DictReader(open(audit), delimiter="\t"):
            raised[f"test_s3select.py::{r['test']}"] = int(r["raised"])
    figures = {}
    for run in ["s3", "iam"]:
        runs = []
        for out in outs:
            tsv = pathlib.Path(out) / run / "results.tsv"
            if tsv.exists():
                runs.append(list(csv.DictReader(tsv.open(), delimiter="\t")))
        if not runs:
            print(f"no {run} run in {outs}: skipped", file=sys.stderr)
            continue
        name = lambda r: f"{r['file']}::{r['test']}"
        passed = set.intersection(*({name(r) for r in rows if r["outcome"] == "passed"} for rows in runs))
        spurious = {t for t in passed if t.startswith("test_s3select.py::") and (not audit or raised.get(t, 1) > 0)}
        passed -= spurious
        for t in sorted(spurious):
            print(f"not listed (its Select calls failed, or were not audited): {t}", file=sys.stderr)
        expect = HERE / f"expect-{run}.txt"
        listed = read_list(expect)
        outcome = {name(r): r["outcome"] for r in runs[0]}
        for t in listed:
            if outcome.get(t) != "passed":
                print(f"listed but {outcome.get(t, 'not run')}: {t}", file=sys.stderr)
        merged = sorted(set(listed) | passed)
        header = (
            f"# ceph/s3-tests ({run} run of ci/s3tests.sh) expected to pass: CI fails when one does not.\n"
            "# Grown by ci/s3tests/update.py from runs; never shrunk by it.\n"
        )
        expect.write_text(header + "".join(t + "\n" for t in merged))
        print(f"{expect.name}: {len(listed)} -> {len(merged)} tests")
        for r in runs[0]:
            f = figures.setdefault(r["file"], {"passed": 0, "ran": 0, "listed": 0})
            f["ran"] += 1
            f["passed"] += r["outcome"] == "passed"
            f["listed"] += name(r) in merged
        # pytest's own count, deselected tests (lifecycle) included.
        for file, f in figures.items():
            log = pathlib.Path(outs[0]) / run / f"pytest-{file[:-3]}.log"
            m = re.search(r"collected (\d+) items?(?: / (\d+) deselected)?", log.read_text()) if log.exists() else None
            if m and "collected" not in f:
                f["collected"], f["deselected"] = int(m.group(1)), int(m.group(2) or 0)
    if figures:
        with (HERE / "figures.tsv").open("w") as fh:
            fh.write("file\tpassed\tcollected\tdeselected\tlisted\tceiling\n")
            for n in sorted(figures):
                f = figures[n]
                row = [f["passed"], f.get("collected", f["ran"]), f.get("deselected", 0), f["listed"], CEILING.get(n, "")]
                fh.write(n + "".join(f"\t{v}" for v in row) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    audit = None
    if args[:1] == ["--select-audit"]:
        audit, args = args[1], args[2:]
    if not args:
        sys.exit(__doc__)
    main(args, audit)
