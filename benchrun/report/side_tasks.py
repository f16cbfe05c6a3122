"""The Side Tasks section: each agent's task per preset at the highest concurrency (latency and
verdict), the first reason of every failed check, and how generated code was contained (the
sandbox mode, and what the sandbox findings say)."""
from __future__ import annotations

from benchrun.analysis.verdicts import Group
from benchrun.report.blocks import Block, Bullets, Para, Table
from benchrun.report.findings import CONTAINED, sandbox_findings, task_rows, verdict


def side_tasks_section(g: Group) -> list[Block]:
    per = {lab: task_rows(g.job(lab, g.cmax)) for lab in g.labels}
    names: list[str] = []
    for rows in per.values():
        names += [n for n in rows if n not in names]
    if not names:
        return [Para(f"The workload `{g.workload}` declares no agents with tasks or quality checks.")]
    rows = []
    for n in names:
        role = next((per[lab][n]["role"] for lab in g.labels if n in per[lab]), None)
        cells = [n + (f" ({role})" if role and role != "side" else "")]
        for lab in g.labels:
            r = per[lab].get(n)
            if not r:
                cells.append("—")
                continue
            lat = f"{sum(r['lat']) / len(r['lat']):.0f}ms" if r["lat"] else "—"
            cells.append(f"{lat} {verdict(r)}")
        rows.append(cells)
    out: list[Block] = [Table(["Task"] + g.labels, rows)]
    fails = []
    for lab in g.labels:
        for n, r in per[lab].items():
            for ch in r["checks"]:
                if ch.get("passed") is False:
                    reason = str(ch.get("reason") or "").strip().splitlines()
                    fails.append(f"{lab} · {n} · `{ch.get('name')}`: {reason[0][:160] if reason else 'failed'}")
    if fails:
        shown = list(dict.fromkeys(fails))
        more = len(shown) - 12
        out.append(Para("Failed checks (first reason each):"))
        out.append(Bullets(shown[:12] + ([f"… and {more} more"] if more > 0 else [])))
    isol = {t.get("isolation") for lab in g.labels for t in (g.job(lab, g.cmax).result.get("tasks") or [])}
    contained = sorted(m for m in isol if m in CONTAINED)
    if contained:
        out.append(Para(f"Generated code ran contained ({', '.join(contained)}): read-only system "
                        "files only, no home, checkout or outputs, no network, its own process namespace."))
    sf = sandbox_findings(g)
    if sf:
        out.append(Bullets(sf))
    return out
