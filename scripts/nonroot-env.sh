#!/usr/bin/env bash
# Prepares what tests/integration/test_sandbox.py needs to run itself as a normal user when the suite runs as
# root (root hides permission bugs): the user `benchrun-nonroot` and a venv it can execute, made
# from the system's python3 (the project's own may sit in root's private home). Idempotent.
set -euo pipefail
uv() { if command -v uv >/dev/null 2>&1; then command uv "$@"; else python3 -m uv "$@"; fi; }
[ "$(id -u)" = 0 ] || { echo "nonroot-env: run as root" >&2; exit 1; }
user=benchrun-nonroot venv=/opt/benchrun-nonroot
id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
if [ ! -x "$venv/bin/python" ]; then
  py=$(command -v /usr/bin/python3 || true)
  [ -n "$py" ] || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; py=/usr/bin/python3; }
  uv venv --quiet --python "$py" "$venv"
fi
uv pip install --quiet --python "$venv/bin/python" pytest psutil
chmod -R a+rX "$venv"
