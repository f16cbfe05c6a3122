"""What the report is about, as its opening says it: the title (the presets compared), the date,
the hardware and the workload of the run, and the Models Under Test table (each preset's model
file, quantization, context, slots, server build and measured peak memory)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchrun.analysis.jobs import Job
from benchrun.analysis.verdicts import Group
from benchrun.report.blocks import Block, Heading, Table


def run_date(jobs: list[Job]) -> str:
    ts = sorted(j.facts.job.started_at for j in jobs)
    ts = [t for t in ts if t]
    return ts[0][:10] if ts else "unknown"


def hardware_line(jobs: list[Job]) -> str:
    seen = []
    for j in jobs:
        h = j.result.get("hardware") or {}
        parts = [str(h.get("name"))]
        if h.get("gpu"):
            mem = f" ({h['gpu_memory_mib'] / 1024:.0f} GB)" if h.get("gpu_memory_mib") else ""
            parts.append(f"{h['gpu']}{mem}")
        if h.get("cpu"):
            parts.append(f"CPU {h['cpu']}")
        if h.get("memory_mib"):
            parts.append(f"{h['memory_mib'] / 1024:.0f} GB RAM")
        s = ", ".join(parts)
        if s not in seen:
            seen.append(s)
    return "; ".join(seen)


def workload_line(j: Job) -> str:
    w = j.result.get("workload") or {}
    settings = ", ".join(f"{k}={v}" for k, v in w.items() if k != "name" and not isinstance(v, (dict, list)))
    return f"`{w.get('name')}`" + (f" ({settings})" if settings else "")


def report_title(groups: list[Group]) -> str:
    labels = []
    for g in groups:
        labels += [lab for lab in g.labels if lab not in labels]
    return " vs ".join(labels) if labels else "benchmark"


def _mib(v: Any) -> str:
    return f"{v / 1024:.1f} GiB" if v and v >= 1024 else (f"{v:.0f} MiB" if v else "—")


def models_under_test(groups: list[Group]) -> list[Block]:
    rows, seen = [], set()
    for g in groups:
        for lab in g.labels:
            if lab in seen:
                continue
            seen.add(lab)
            j = g.grid[lab][max(g.grid[lab])]
            m, s = j.result["model"], j.result["server"]
            peaks = [x.value("memory.peak_mib") for x in g.grid[lab].values()]
            peaks = [p for p in peaks if p is not None]
            mem_s = f"{_mib(max(peaks))} peak {j.facts.memory.kind or ''}".strip() if peaks else "not measured"
            size = f"{m['size_bytes'] / 2**20:.0f} MiB" if m.get("size_bytes") else "—"
            ctx = m.get("ctx_size")
            rows.append([lab, m["name"], s.get("backend") or "—", f"`{Path(m['path']).name}`" if m.get("path") else "—",
                         str(m.get("quantization") or "—"), size, mem_s,
                         f"{ctx // 1024}k" if isinstance(ctx, int) and ctx >= 1024 else str(ctx or "—"),
                         str(m.get("parallel") or "—"), str(s.get("build_info") or "—")])
    return [Heading(2, "Models Under Test"),
            Table(["Model", "Preset", "Backend", "Model file", "Quantization", "File size", "Measured memory",
                   "Context", "Parallel slots", "Server build"], rows, "lllllrrrrl")]
