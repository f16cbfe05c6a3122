"""Fetch distributions from the package index with pip, never installing them.

`pip_download(requirements, dest)` runs `python -m pip download` (the pip of benchrun's own
interpreter) and returns the files it saved. pip's own configuration applies (index URL,
extra indexes, find-links, certificates: `pip config list`), so benchrun names packages and
exact versions, never hosts. Any failure raises FetchError with one line: pip's own error and
the command to run by hand.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


class FetchError(RuntimeError):
    """A distribution could not be fetched or used; the message is one line for the user."""


def _name(requirement: str) -> str:
    return requirement.split("==", 1)[0].strip()


def download_command(requirements: Sequence[str], dest: Path, sdist: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input",
           "--disable-pip-version-check", "--dest", str(dest)]
    if sdist:
        # Only the named packages as source. `--no-binary :all:` would also make pip build the
        # sdist's *build* dependencies from source to read its metadata (cmake itself: an hour).
        cmd += ["--no-binary", ",".join(_name(r) for r in requirements)]
    else:
        cmd += ["--only-binary", ":all:"]  # a wheel or nothing: nothing is ever built
    return cmd + list(requirements)


def _pip_error(output: str) -> str:
    """pip's own reason, in one line: its first ERROR line, else its last line."""
    lines = [x.strip() for x in output.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("ERROR:")]
    if "No module named pip" in output:
        return f"pip is not installed for {sys.executable} (python -m ensurepip, or uv sync)"
    return (errors or lines or ["no output"])[0]


def pip_download(requirements: Sequence[str], dest: Path, sdist: bool = False,
                 timeout_s: float = 1800) -> list[Path]:
    """Download exactly `requirements` (pinned, without their dependencies) into `dest`;
    returns the files pip saved there."""
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    cmd = download_command(requirements, dest, sdist)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise FetchError(f"pip download {' '.join(requirements)} took over {timeout_s:g}s") from None
    if proc.returncode != 0:
        by_hand = shlex.join(["python", "-m", "pip", "download", "--no-deps", *requirements])
        raise FetchError(f"pip could not download {' '.join(requirements)}: "
                         f"{_pip_error(proc.stderr + proc.stdout)} (try by hand: {by_hand}; "
                         f"the index is pip's own setting: pip config list)")
    saved = sorted(set(dest.iterdir()) - before)
    return saved or sorted(dest.iterdir())  # pip keeps a file already in dest: it is the one asked for
