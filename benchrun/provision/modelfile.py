"""Facts about a model file, cached by path, size and mtime: its sha256 (hashing a 20 GB GGUF
on every job would cost minutes) and whatever else is slow to read (fit.py's GGUF header:
7 s for a 152k-token vocabulary)."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from benchrun.provision.tinymodel import default_cache_dir


def file_cached(path: Path, name: str, compute: Callable[[Path], Any]) -> Any:
    """compute(path), remembered in <cache>/<name>.json by path, size and mtime: a changed
    file is computed again. `compute` returns JSON; an exception it raises is not remembered."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache_file = default_cache_dir().parent / f"{name}.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    cache[key] = compute(path)
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_file)
    except OSError:
        pass  # a read-only cache only costs the work again next time
    return cache[key]


def sha256_file(path: Path) -> str:
    """The file's sha256, read now (sha256_of remembers it)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    return file_cached(path, "sha256", sha256_file)


def describe_model(name: str, path: Optional[Path]) -> dict:
    if path is None:
        return {"name": name, "path": None, "sha256": None, "size_bytes": None}
    return {"name": name, "path": str(path), "sha256": sha256_of(path),
            "size_bytes": path.stat().st_size}
