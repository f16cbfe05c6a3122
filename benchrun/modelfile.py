"""Facts about a model file: its sha256 (cached by path, size and mtime: hashing a 20 GB
GGUF on every job would cost minutes)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Optional

from .tinymodel import default_cache_dir


def _cache_file() -> Path:
    return default_cache_dir().parent / "sha256.json"


def sha256_of(path: Path) -> str:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache_file = _cache_file()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    cache[key] = h.hexdigest()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_file)
    except OSError:
        pass  # a read-only cache only costs a rehash next time
    return cache[key]


def describe_model(name: str, path: Optional[Path]) -> dict:
    if path is None:
        return {"name": name, "path": None, "sha256": None, "size_bytes": None}
    return {"name": name, "path": str(path), "sha256": sha256_of(path),
            "size_bytes": path.stat().st_size}
