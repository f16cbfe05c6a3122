"""Workloads turn a WorkloadConfig into conversations for the engine."""
from __future__ import annotations

from ..config import WorkloadConfig
from .agentic import AgenticWorkload
from .base import Workload
from .replay import ReplayWorkload
from .synthetic import SyntheticWorkload

KINDS: dict[str, type[Workload]] = {"synthetic": SyntheticWorkload, "agentic": AgenticWorkload,
                                    "replay": ReplayWorkload}


def make_workload(cfg: WorkloadConfig, concurrency: int) -> Workload:
    return KINDS[cfg.kind](cfg, concurrency)  # config.validate has checked the kind
