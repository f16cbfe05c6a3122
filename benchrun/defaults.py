"""Which fields of a config dataclass were set away from their defaults: how a backend or a
workload kind tells that a field only another one reads was set (servers.registry, workloads)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import MISSING, fields
from typing import Any


def set_away_from_default(cfg: Any, names: Iterable[str]) -> list[str]:
    """Those of `names` whose value in the dataclass `cfg` is not the field's default, sorted."""
    default = {f.name: f.default if f.default_factory is MISSING else f.default_factory() for f in fields(cfg)}
    return sorted(n for n in names if getattr(cfg, n) != default[n])
