"""Hydra's compose, remembered for the unit tier (tests/unit/conftest.py puts it in place of
hydra.compose, which benchrun's own compose calls): a Hydra compose takes ~0.1 s, and the unit
tier composes the same command line many times over (the compose fixture, precheck, cli.main).

A config is composed once per (config name, overrides, config search path, the content of every
directory on it, Hydra's job name) and each caller gets its own deep copy, so a test that changes
its config changes nobody else's. The search path is read from the initialised Hydra itself: it is
what $BENCHRUN_CONF, $BENCHRUN_USER_DIR and the cwd (the user's ./conf and ./experiments) made it,
and a test that writes or edits a config file between two composes composes again. What Hydra
itself sets per call is set per call, as Hydra sets it: hydra.runtime.cwd (os.getcwd()), and with
return_hydra_config=False the hydra node is dropped from the copy, as hydra.compose drops it.
Nothing is resolved here: interpolations (${oc.env:...}, the run id) resolve when the caller
reads them, from that moment's environment. A compose that fails is not remembered: it fails
again, with Hydra's own error, every time; a config that copies environment variables
(hydra.job.env_copy) is never remembered either."""
from __future__ import annotations

import copy
import hashlib
import os
from typing import Any

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobRuntime
from omegaconf import DictConfig, open_dict

hydra_compose = hydra.compose  # Hydra's own, called on a miss
_composed: dict[tuple, DictConfig] = {}


def _tree_digest(path: str) -> str:
    """Every file under a config dir (through symlinks: the user's experiments/ is linked in),
    by relative path and content."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(root, name)
            h.update(os.path.relpath(p, path).encode() + b"\0")
            try:
                with open(p, "rb") as f:
                    h.update(f.read())
            except OSError as e:
                h.update(repr(e).encode())
            h.update(b"\0")
    return h.hexdigest()


def _search_state() -> tuple:
    """The config search path of the initialised Hydra, each directory on it with its content."""
    out = []
    for e in GlobalHydra.instance().config_loader().get_search_path().get_path():
        path = e.path
        if path.startswith("file://"):
            path = path[len("file://"):]
        local = "://" not in path
        out.append((e.provider, e.path, _tree_digest(path) if local else None))
    return tuple(out)


def compose(config_name: str | None = None, overrides: list[str] | None = None,
            return_hydra_config: bool = False, strict: bool | None = None) -> DictConfig:
    gh = GlobalHydra.instance()
    if strict is not None or not gh.is_initialized():
        return hydra_compose(config_name, overrides, return_hydra_config, strict)
    key = (config_name, tuple(overrides or ()), _search_state(), JobRuntime.instance().get("name"))
    full = _composed.get(key)
    if full is None:
        full = hydra_compose(config_name, list(overrides or ()), return_hydra_config=True)
        if full.hydra.job.get("env_copy"):
            return _as_asked(full, return_hydra_config)
        _composed[key] = full
    return _as_asked(copy.deepcopy(full), return_hydra_config)


def _as_asked(cfg: DictConfig, return_hydra_config: bool) -> Any:
    if return_hydra_config:
        cfg.hydra.runtime.cwd = os.getcwd()
    else:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg
