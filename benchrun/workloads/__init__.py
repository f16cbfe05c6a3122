"""Workloads turn a WorkloadConfig into conversations for the engine."""
from __future__ import annotations

from benchrun.config import WorkloadConfig
from benchrun.workloads.agentic import AgenticWorkload
from benchrun.workloads.base import Workload
from benchrun.workloads.replay import ReplayWorkload
from benchrun.workloads.synthetic import SyntheticWorkload

KINDS: dict[str, type[Workload]] = {"synthetic": SyntheticWorkload, "agentic": AgenticWorkload,
                                    "replay": ReplayWorkload}


def make_workload(cfg: WorkloadConfig, concurrency: int) -> Workload:
    return KINDS[cfg.kind](cfg, concurrency)  # config.validate has checked the kind
