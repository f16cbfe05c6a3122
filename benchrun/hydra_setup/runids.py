"""The run id: one per invocation, shared with child processes (submitit workers) through
$BENCHRUN_RUN_ID, and the OmegaConf resolvers conf/ names it by (${run_id:}, ${sweep_root:}),
registered when this package is imported."""
from __future__ import annotations

import datetime as dt
import os
import secrets
from typing import Any

from omegaconf import OmegaConf

RUN_ID_ENV = "BENCHRUN_RUN_ID"


def run_id() -> str:
    """One id per invocation, shared with child processes (submitit workers) via the env.
    Timestamp plus random suffix: two runs started in the same second never share a dir."""
    if RUN_ID_ENV not in os.environ:
        os.environ[RUN_ID_ENV] = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_") + secrets.token_hex(3)
    return os.environ[RUN_ID_ENV]


def sweep_root(resume: Any = None) -> str:
    """The run or sweep dir: the one being resumed, else outputs/<run id>."""
    return str(resume) if resume else f"outputs/{run_id()}"


OmegaConf.register_new_resolver("run_id", run_id, replace=True)
OmegaConf.register_new_resolver("sweep_root", sweep_root, replace=True)
