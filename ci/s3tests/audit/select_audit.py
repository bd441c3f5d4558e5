"""A pytest plugin for auditing test_s3select.py (not the gate): records, per test, how
many SelectObjectContent calls answered and how many raised, so that a test which passes
only because both queries it compares failed alike is not listed as a real pass.

    PYTHONPATH=ci/s3tests/audit PYTEST_ARGS="-p select_audit" SELECT_AUDIT=out.tsv ...
"""

import os

import botocore.client

_calls = {}
_current = [None]
_orig = botocore.client.BaseClient._make_api_call


def _make_api_call(self, operation_name, api_params):
    if operation_name != "SelectObjectContent":
        return _orig(self, operation_name, api_params)
    stats = _calls.setdefault(_current[0], [0, 0])
    try:
        resp = _orig(self, operation_name, api_params)
    except Exception:
        stats[1] += 1
        raise
    # The event stream is read lazily; an error event surfaces while iterating.
    payload = resp.get("Payload")
    if payload is not None:
        events = []
        try:
            for e in payload:
                events.append(e)
        except Exception:
            stats[1] += 1
            raise
        resp["Payload"] = iter(events)
    stats[0] += 1
    return resp


botocore.client.BaseClient._make_api_call = _make_api_call


def pytest_runtest_setup(item):
    _current[0] = item.name


def pytest_sessionfinish(session):
    path = os.environ.get("SELECT_AUDIT")
    if not path:
        return
    with open(path, "w") as fh:
        fh.write("test\tanswered\traised\n")
        for name, (ok, bad) in sorted((k, v) for k, v in _calls.items() if k):
            fh.write(f"{name}\t{ok}\t{bad}\n")
