#!/usr/bin/env bash
# Are pyproject.toml's lower bounds true? Installs the lowest version uv can resolve of every
# direct dependency into a throwaway venv and runs the tests that exercise them (metrics, fit,
# config, report and charts, a real sweep). uv's cache keeps a second run cheap (~2 min).
set -euo pipefail
cd "$(dirname "$0")/.."
uv() { if command -v uv >/dev/null 2>&1; then command uv "$@"; else python3 -m uv "$@"; fi; }
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
py=$(uv run --frozen python -c 'import sys; print(sys.executable)')
uv pip compile -q pyproject.toml --resolution lowest-direct --python "$py" -o "$d/lowest.txt"
uv venv -q --python "$py" "$d/venv"
uv pip install -q --python "$d/venv/bin/python" -r "$d/lowest.txt" pytest pytest-timeout pytest-xdist
uv pip install -q --python "$d/venv/bin/python" --no-deps -e .
echo "lowest direct dependencies: $(grep -cE '^[a-z]' "$d/lowest.txt") packages, e.g. $(grep -E '^(aiohttp|gguf|numpy|psutil|xllamacpp)==' "$d/lowest.txt" | tr '\n' ' ')"
"$d/venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit/test_metrics.py tests/unit/test_stats.py \
  tests/unit/test_fit.py tests/unit/test_config.py tests/unit/test_report_handmade.py tests/unit/test_sweep.py \
  tests/integration/test_sweep.py tests/unit/test_progress.py tests/integration/test_progress.py \
  tests/unit/test_promscrape.py
