"""A command line's jobs: the overrides of every job it runs, as Hydra's basic sweeper expands
them (the selected experiment's declared sweep, then the command line; expand_sweep is also what
hydra_plugins/benchrun_sweeper runs), and how a sweep's repeats run (interleave_rounds)."""
from __future__ import annotations

import itertools
from typing import Any

from benchrun.config import split_override
from benchrun.hydra_setup.composition import compose, hydra_conf
from benchrun.hydra_setup.errors import ConfigError, explain


def sweep_jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The overrides of every job the command line runs, as Hydra's basic sweeper expands them:
    with -m, the selected experiment's hydra.sweeper.params first, then the command line (a
    key given on the command line wins). Inside hydra_conf()."""
    if not multirun:
        return [list(overrides)]
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    # The sweep's own config is composed without the sweeps, as Hydra composes it for -m.
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    params = declared_sweep(fixed)
    return expand_sweep(params, overrides)


def expand_sweep(params: dict[str, Any], overrides: list[str]) -> list[list[str]]:
    """A sweep's declared params, then the command line -> every job's overrides, as Hydra's
    basic sweeper expands them, through the parser's public API: one list of choices per key
    (a command-line key replaces a declared one in its place), their product in key order."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{k}={v}" for k, v in params.items()] + list(overrides)
    choices: dict[str, list[str]] = {}
    for o in OverridesParser.create().parse_overrides(lines):
        key = o.get_key_element()
        if not o.is_sweep_override():
            choices[key] = [f"{key}={o.get_value_element_as_str()}"]
        elif o.is_discrete_sweep():
            choices[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:
            raise ConfigError(f"{o.input_line}: an interval sweep has no list of values to run; "
                              "list the values (key=a,b,c)")
    return [list(job) for job in itertools.product(*choices.values())]


def declared_sweep(overrides: list[str]) -> dict[str, Any]:
    """The sweep an experiment file declares (hydra.sweeper.params); Hydra runs it only with -m.
    Inside hydra_conf()."""
    return dict(compose(list(overrides), return_hydra_config=True).hydra.sweeper.get("params") or {})


def interleave_rounds(overrides: list[str], jobs: list[list[str]]) -> tuple[str, int, int]:
    """(order, order_seed, repeats) of a sweep whose repeats should run as interleaved rounds
    (benchrun/order.py), else ("grouped", seed, repeats). Every job must agree on repeats and
    order; a command line that sets round= itself is left alone."""
    if any(split_override(o)[0] == "round" for o in overrides):
        return "grouped", 0, 1
    try:
        with hydra_conf():
            cfgs = [compose(j) for j in jobs]
    except Exception as e:  # noqa: BLE001 -- precheck composed these already; one line anyway
        raise ConfigError(explain(e)) from e
    settings = {(int(c.repeats), str(c.order), int(c.order_seed)) for c in cfgs}
    if len(settings) != 1:
        raise ConfigError("repeats, order and order_seed must be the same for every job of a sweep "
                          "(run sweeps over them as separate commands)")
    repeats, order, seed = settings.pop()
    return (order if repeats > 1 else "grouped"), seed, repeats
