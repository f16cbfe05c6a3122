"""Workloads turn a WorkloadConfig into conversations for the engine. One module per kind;
each kind owns its part of the workload schema (Workload.own_fields)."""
from __future__ import annotations

from benchrun.config import WorkloadConfig
from benchrun.defaults import set_away_from_default
from benchrun.workloads.agentic import AgenticWorkload
from benchrun.workloads.base import Workload
from benchrun.workloads.depth import DepthWorkload
from benchrun.workloads.replay import ReplayWorkload
from benchrun.workloads.synthetic import SyntheticWorkload

KINDS: dict[str, type[Workload]] = {"synthetic": SyntheticWorkload, "agentic": AgenticWorkload,
                                    "replay": ReplayWorkload, "depth": DepthWorkload}


def make_workload(cfg: WorkloadConfig, concurrency: int) -> Workload:
    """The workload of cfg.kind (config.validate has checked the kind). A field only another
    kind reads, changed from its default, is refused (one line): it would be silently ignored."""
    kind = KINDS[cfg.kind]
    for other_name, other in KINDS.items():
        for name in set_away_from_default(cfg, set(other.own_fields) - set(kind.own_fields)):
            raise ValueError(f"workload.{name} is read by workload kind {other_name} only; this workload "
                             f"({cfg.name}) is kind {cfg.kind} (a sweep over kinds: set it in the "
                             f"{other_name} workload's file)")
    return kind(cfg, concurrency)
