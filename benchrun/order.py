"""In which order a sweep runs its jobs, so that the order never becomes a treatment.

Hydra's basic sweeper runs the grid preset by preset: with `repeats=3`, all of preset A's
repeats run in the first half of the sweep and all of B's in the second, and whatever drifts on
the machine meanwhile (load from other work, CPU clocks, page cache) is credited to the preset.
With `order=interleaved` (the default for sweeps with repeats) each repeat runs as its own job,
in rounds: round 0 is the whole grid once, then round 1, ... (A B A B), so drift spreads over
every preset; `order=random` also shuffles, per round and seeded by `order_seed`, the order of
the presets and of each preset's levels. `order=grouped` is the old back-to-back order.

The cost: a server is kept only across consecutive jobs of one preset, so interleaving starts
each preset's server once per round (R x P starts instead of P). On the tiny models that is ~1 s
each; on a 20 GB model tens of seconds, still small against a sweep of minutes, and a restart
per round also puts server start-up variation into the repeats' spread, where it belongs.

Pure functions over job override lists (["model=a", "concurrency=1", "round=0"], ...); no Hydra.
"""
from __future__ import annotations

import random

from benchrun.config import ORDERS, split_override


def round_of(job: list[str]):
    for o in job:
        if split_override(o)[0] == "round":
            return int(o.split("=", 1)[1])
    return None


def preset_of(job: list[str]) -> tuple:
    """What decides the server: every override but the level and the round."""
    return tuple(o for o in job if split_override(o)[0] not in ("concurrency", "round"))


def order_jobs(jobs: list[list[str]], mode: str, seed: int = 0) -> list[list[str]]:
    """The jobs in the order to run them. Jobs without a round override keep their order."""
    if mode not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {mode!r}")
    if mode == "grouped" or all(round_of(j) is None for j in jobs):
        return [list(j) for j in jobs]
    rounds: dict = {}
    for j in jobs:
        rounds.setdefault(round_of(j) or 0, []).append(list(j))
    out = []
    for r in sorted(rounds):
        block = rounds[r]
        if mode == "random":
            rng = random.Random(seed * 1_000_003 + r)  # one stream per round: reproducible, rounds differ
            presets: dict = {}
            for j in block:
                presets.setdefault(preset_of(j), []).append(j)
            keys = list(presets)
            rng.shuffle(keys)
            for k in keys:
                levels = presets[k]
                rng.shuffle(levels)
                out += levels
        else:
            out += block
    return out


def server_starts(jobs: list[list[str]]) -> int:
    """How many servers a sweep in this order starts (one per change of preset)."""
    starts, prev = 0, None
    for j in jobs:
        p = preset_of(j)
        starts += p != prev
        prev = p
    return starts
