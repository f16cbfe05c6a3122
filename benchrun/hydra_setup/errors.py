"""Errors as one line for the user: ConfigError (a bad command line or config, already one
line) and explain, which turns Hydra's and OmegaConf's multi-line errors into one line naming
the key and what is allowed."""
from __future__ import annotations

from benchrun.hydra_setup.composition import compose


class ConfigError(Exception):
    """A bad command line or config; the message is one line for the user."""


def _keys_at(parent: str) -> list[str]:
    """The keys a config node has (for 'unknown key' messages)."""
    node = compose()
    for part in filter(None, parent.split(".")):
        node = node.get(part) if hasattr(node, "get") else None
    return sorted(node.keys()) if hasattr(node, "keys") else []


def explain(exc: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line errors (and benchrun's own) -> one line naming the
    key and what is allowed."""
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, ValidationError

    def first(e: BaseException) -> str:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__

    if isinstance(exc, MissingConfigException):
        missing = first(exc).split("Could not find '", 1)[-1].rstrip("'")
        group, _, name = missing.rpartition("/")
        if group:
            options = sorted(o for o in (exc.options or []) if not o.startswith("base_"))
            return f"unknown {group} '{name}'; allowed: {', '.join(options)}"
        return first(exc)
    if isinstance(exc, OverrideParseException):
        return f"cannot parse override: {first(exc)} (quote a value with spaces or other characters: key='value')"
    cause = exc.__cause__ or exc
    if isinstance(cause, (ConfigKeyError, AttributeError)) and getattr(cause, "full_key", None):
        key = cause.full_key
        parent = key.rpartition(".")[0]
        where = f"'{parent}'" if parent else "the top level"
        try:
            keys = ", ".join(_keys_at(parent))
        except Exception:  # noqa: BLE001 -- conf/ itself is broken: the key alone still helps
            keys = "?"
        return f"unknown config key '{key}'; keys at {where}: {keys}"
    if isinstance(cause, MissingMandatoryValue):
        return f"{cause.full_key} is required but not set (add {cause.full_key}=...)"
    if isinstance(cause, ValidationError) and getattr(cause, "full_key", None):
        return f"bad value for {cause.full_key}: {first(cause.msg)}"
    if isinstance(exc, ConfigCompositionException):
        if first(exc).startswith("Multiple values for "):  # `+group=x` for a group the defaults list has
            group = first(exc)[len("Multiple values for "):].split(".")[0]
            return f"{group} is already chosen by the defaults: write {group}=NAME, without the +"
        return first(exc) + (" (sweeps need -m)" if "Ambiguous value" in str(exc) else "")
    if isinstance(exc, (ConfigError, ValueError, RuntimeError)):  # benchrun's own one-liners
        return first(exc)
    return f"{type(exc).__name__}: {first(exc)}"
