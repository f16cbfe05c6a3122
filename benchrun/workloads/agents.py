"""The agents an agentic workload's YAML declares (`agents:`), parsed into typed Agents and Turns
with the workload's defaults filled in and every reference checked (one-line errors naming the
agent), and the prompt templates filled from earlier replies (`{{ NAME.last|code|turnK }}`) and
shipped data files (`{{ data:FILE }}`). agentic.py runs them."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from benchrun.checks import DATA_DIR, normalize
from benchrun.checks.extract import extract_code
from benchrun.config import WorkloadConfig

REF = re.compile(r"\{\{\s*(?:data:\s*([\w./-]+)|([A-Za-z_][\w-]*)\.(last|code|turn\d+))\s*\}\}")
_TURN_KEYS = {"prompt", "max_tokens", "temperature", "seed", "cache_prompt", "extra", "checks"}
_AGENT_KEYS = {"name", "title", "role", "system", "needs", "turns", "checks", "max_tokens",
               "temperature", "extra"}


@dataclass
class Turn:
    prompt: str
    max_tokens: int
    temperature: float
    seed: int
    cache_prompt: bool
    extra: dict
    checks: list = field(default_factory=list)


@dataclass
class Agent:
    name: str
    title: str
    role: str
    system: Optional[str]
    turns: list
    needs: list = field(default_factory=list)
    checks: list = field(default_factory=list)  # on the agent's last reply


@dataclass
class Instance:
    """One running copy of an agent at a concurrency level (S1#2 is S1's second copy)."""

    label: str
    agent: Agent


def parse_agents(cfg: WorkloadConfig) -> list[Agent]:
    """The YAML `agents` list -> Agents, with workload-level defaults filled in.
    Raises ValueError (one line, naming the agent) on anything malformed."""
    raw = list(cfg.agents)
    if not raw:
        raise ValueError(f"workload {cfg.name!r}: kind agentic needs a non-empty `agents` list")
    base_extra = dict(cfg.extra_body)
    agents: list[Agent] = []
    pipeline = any(a.get("needs") for a in raw if isinstance(a, dict))
    for i, a in enumerate(raw):
        if not isinstance(a, dict) or not a.get("name") or not a.get("turns"):
            raise ValueError(f"workload agent #{i} needs `name` and a non-empty `turns` list")
        name = str(a["name"])
        bad = set(a) - _AGENT_KEYS
        if bad:
            raise ValueError(f"agent {name}: unknown key(s) {', '.join(sorted(bad))}")
        turns = []
        for k, t in enumerate(a["turns"]):
            t = {"prompt": t} if isinstance(t, str) else t
            if not isinstance(t, dict) or not t.get("prompt"):
                raise ValueError(f"agent {name} turn {k + 1}: needs a `prompt`")
            bad = set(t) - _TURN_KEYS
            if bad:
                raise ValueError(f"agent {name} turn {k + 1}: unknown key(s) {', '.join(sorted(bad))}")
            mt = int(t.get("max_tokens", a.get("max_tokens", cfg.output_tokens)))
            if cfg.max_tokens_cap:
                mt = min(mt, int(cfg.max_tokens_cap))
            turns.append(Turn(prompt=str(t["prompt"]), max_tokens=mt,
                              temperature=float(t.get("temperature", a.get("temperature", cfg.temperature))),
                              seed=int(t.get("seed", cfg.seed + 100 * i + k)),
                              cache_prompt=bool(t.get("cache_prompt", cfg.cache_prompt)),
                              extra={**base_extra, **(a.get("extra") or {}), **(t.get("extra") or {})},
                              checks=[normalize(c) for c in t.get("checks") or []]))
        role = a.get("role") or ("pipeline" if pipeline else "primary" if i == 0 else "side")
        if role not in ("primary", "side", "pipeline"):
            raise ValueError(f"agent {name}: role must be primary, side or pipeline, got {role!r}")
        agents.append(Agent(name=name, title=str(a.get("title", name)), role=role,
                            system=a.get("system", cfg.system_prompt), turns=turns,
                            needs=[str(n) for n in a.get("needs") or []],
                            checks=[normalize(c) for c in a.get("checks") or []]))
    _validate_refs(agents)
    return agents


def _validate_refs(agents: list[Agent]) -> None:
    names = [a.name for a in agents]
    if len(set(names)) != len(names):
        raise ValueError(f"agent names must be unique, got {', '.join(names)}")
    seen: set[str] = set()
    for a in agents:
        for n in a.needs:
            if n not in names:
                raise ValueError(f"agent {a.name} needs unknown agent {n!r}")
            if n not in seen:  # declared order is the run order: it must be topological
                raise ValueError(f"agent {a.name} needs {n}, which must be listed before it")
        for t in a.turns:
            for m in REF.finditer(t.prompt):
                if m.group(1):
                    if not (DATA_DIR / m.group(1)).is_file():
                        raise ValueError(f"agent {a.name}: no data file {m.group(1)!r} in {DATA_DIR}")
                elif m.group(2) != a.name and m.group(2) not in a.needs:
                    raise ValueError(f"agent {a.name} refers to {{{{ {m.group(2)}.{m.group(3)} }}}} "
                                     f"but does not list {m.group(2)} in `needs`")
        seen.add(a.name)


def render(template: str, outputs: dict[str, list[str]]) -> str:
    """Fill `{{ NAME.last|code|turnK }}` and `{{ data:FILE }}`; all else is left as written."""
    def sub(m: re.Match) -> str:
        if m.group(1):
            return (DATA_DIR / m.group(1)).read_text().rstrip("\n")
        replies = outputs.get(m.group(2)) or []
        what = m.group(3)
        if what.startswith("turn"):
            k = int(what[4:])
            return replies[k - 1] if 0 < k <= len(replies) else ""
        last = replies[-1] if replies else ""
        return extract_code(last).rstrip("\n") if what == "code" else last

    return REF.sub(sub, template)
