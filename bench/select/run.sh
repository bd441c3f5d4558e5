#!/usr/bin/env bash
# S3 Select vs GET+pyarrow, DuckDB and chdb on the same data: builds the release binaries,
# makes a venv with the clients, runs compare.py. Arguments pass through (--rows, --repeat).
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${QUARRY_PROFILE:-release}
cargo build --profile "$profile" -p quarry-server -p quarry-datasets
venv=${QUARRY_BENCH_VENV:-$HOME/.cache/quarry-bench/venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q boto3 pyarrow duckdb chdb
dir=target/$profile
"$venv/bin/python" bench/select/compare.py --quarry "$dir/quarry" --datasets "$dir/quarry-datasets" "$@"
