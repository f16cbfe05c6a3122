"""The report's content, in the seed report's structure, as blocks (see blocks.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from benchrun.analysis import noise
from benchrun.analysis.jobs import Job
from benchrun.measure.views import BY_KEY
from benchrun.report.blocks import Block, Bullets, Heading, Image, Para, Table
from benchrun.report.capacity import blocks as capacity_blocks
from benchrun.report.capacity import pick as capacity_pick
from benchrun.report.depth import blocks as depth_blocks
from benchrun.report.findings import CONTAINED, key_findings, sandbox_findings, task_rows, verdict
from benchrun.report.generated import generated_code
from benchrun.report.recommend import recommendation
from benchrun.report.rerun import prerequisites, reproducing, sweep_command  # noqa: F401 -- sweep_command: tests
from benchrun.report.view import Group, family_axes, show, winner_cell

M = BY_KEY
CHART_TITLES = {"radar": "Radar: model comparison", "degradation": "Degradation: performance vs concurrency",
                "throughput": "Throughput: tokens/s by concurrency", "side_tasks": "Side tasks at max concurrency",
                "latency_cdf": "Latency distributions (TTFT and ITL)"}


def _date(jobs: list[Job]) -> str:
    ts = sorted(j.facts.job.started_at for j in jobs)
    ts = [t for t in ts if t]
    return ts[0][:10] if ts else "unknown"


def _hardware(jobs: list[Job]) -> str:
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


def _workload(j: Job) -> str:
    w = j.result.get("workload") or {}
    settings = ", ".join(f"{k}={v}" for k, v in w.items() if k != "name" and not isinstance(v, (dict, list)))
    return f"`{w.get('name')}`" + (f" ({settings})" if settings else "")


def _title(groups: list[Group]) -> str:
    labels = []
    for g in groups:
        labels += [lab for lab in g.labels if lab not in labels]
    return " vs ".join(labels) if labels else "benchmark"


def _mib(v) -> str:
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


MARKS = "¹²³⁴⁵⁶⁷⁸⁹"


def summary_table(g: Group) -> list[Block]:
    """The table, then one footnote per distinct reason behind a Winner cell (each row carries
    only its marker, so a reason said once is not repeated down the column)."""
    rows: list[list[str]] = []
    reasons: list[str] = []
    many = len(g.labels) >= 2
    for key, c, label in family_axes(g):
        cands = {lab: g.job(lab, c) for lab in g.labels}
        if all(j is None or j.value(key) is None for j in cands.values()):
            continue
        row = [label] + [show(j, M[key]) for j in cands.values()]
        if many:
            cell, why = winner_cell(g.verdict(key, c))
            if why:
                if why not in reasons:
                    reasons.append(why)
                cell += " " + MARKS[min(reasons.index(why), len(MARKS) - 1)]
            row.append(cell)
        rows.append(row)
    tallies = {lab: g.tally(lab) for lab in g.labels}
    if any(t[1] for t in tallies.values()):
        row = [f"Quality checks (C{g.cmax})"] + [_tasks_cell(g, lab, p, n) for lab, (p, n) in tallies.items()]
        if many:
            rates = {lab: p / n for lab, (p, n) in tallies.items() if n}
            best = sorted(rates.values(), reverse=True)
            row.append("—" if len(best) < 2 else "Tie" if best[0] == best[1] else max(rates, key=rates.get))
        rows.append(row)
    headers = ["Metric"] + g.labels + (["Winner"] if many else [])
    notes = [Para(f"{MARKS[min(i, len(MARKS) - 1)]} {r}") for i, r in enumerate(reasons)]
    return [Table(headers, rows, "l" + "r" * len(g.labels) + ("l" if many else ""))] + notes


def _tasks_cell(g: Group, lab: str, p: int, n: int) -> str:
    """The seed's '2/2 PASS': tasks passing in every repeat; over repeats also the runs, '(6/6 runs)'."""
    if not n:
        return "—"
    rows = [r for r in task_rows(g.job(lab, g.cmax)).values() if r["passed"]]
    k = sum(1 for r in rows if all(r["passed"]))
    return f"{k}/{len(rows)} PASS" + (f" ({p}/{n} runs)" if n != len(rows) else "")


def detailed(g: Group) -> list[Block]:
    out: list[Block] = []
    extra = [k for k in ("memory.peak_mib", "goodput.share") if any(
        j.value(k) is not None for row in g.grid.values() for j in row.values())]
    # The seed's "Turn 3 tok/s": the primary agent's last-turn decode speed, when the workload has one.
    last_turn = any(_primary_last_turn(j) is not None for row in g.grid.values() for j in row.values())
    for c in g.levels:
        name = " (solo)" if c == 1 else (" (max load)" if c == g.levels[-1] else "")
        out.append(Heading(3, f"Concurrency {c}{name}"))
        rows = []
        for lab in g.labels:
            j = g.job(lab, c)
            if j is None:
                continue
            m = j.facts.metrics
            counts = f"{m.get('requests_ok', 0)}/{m.get('requests_failed', 0)}/{m.get('requests_truncated', 0)}"
            rows.append([lab, counts,
                         show(j, M["ttft_ms.p50"], False), show(j, M["ttft_ms.p90"], False),
                         show(j, M["itl_ms.p50"], False), show(j, M["decode_tok_s.hmean"], False),
                         show(j, M["e2e_ms.p50"], False), show(j, M["output_throughput_tok_s"], False),
                         show(j, M["wall_s"], False)] + [show(j, M[k], False) for k in extra]
                        + ([_fmt(_primary_last_turn(j))] if last_turn else []))
        out.append(Table(["Model", "ok/failed/truncated", "TTFT p50 (ms)", "TTFT p90 (ms)", "ITL p50 (ms)",
                          "Decode, harmonic mean (tok/s)", "E2E p50 (ms)", "Aggregate (tok/s)",
                          "Total time per repeat (s)"]
                         + [f"{M[k].label} ({M[k].unit})" if M[k].unit else M[k].label for k in extra]
                         + (["Primary last turn (tok/s)"] if last_turn else []), rows))
    reps = {j.repeats for row in g.grid.values() for j in row.values()}
    note = ("Values are pooled over all repeats; ± is the 95% confidence half-width across repeats."
            if max(reps) > 1 else "One repeat per job: no spread across repeats (run with repeats=N for intervals).")
    out.append(Para(note + " Total time per repeat is the wall time of one repeat of the whole load at that level."))
    return out


def _primary_last_turn(j: Job):
    """Mean over repeats of the primary agent's last-turn decode tok/s (tasks[], issue 4)."""
    v = [t["last_turn_decode_tok_s"] for t in j.result.get("tasks") or []
         if t.get("role") == "primary" and isinstance(t.get("last_turn_decode_tok_s"), (int, float))]
    return sum(v) / len(v) if v else None


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.1f}"


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


def failed_jobs(jobs: list[Job]) -> list[Block]:
    bad = [j for j in jobs if not j.ok]
    if not bad:
        return []
    rows = [[j.dir.name, j.model, f"C{j.concurrency}", str(j.result.get("status")),
             str(j.result.get("error") or "no error recorded").splitlines()[0][:300]] for j in bad]
    return [Heading(2, "Failed Jobs"),
            Para(f"{len(bad)} of {len(jobs)} jobs did not finish; they are left out of every table and chart above."),
            Table(["Job", "Model", "Concurrency", "Status", "Error"], rows, "lllll")]


def verdict_note(g: Group) -> str:
    """How the Winner column (and the findings and recommendation built on it) was decided, in
    two sentences; the full method is in docs/reports.md."""
    decode = "Decode speed is the harmonic mean over requests (1000 / mean TPOT)."
    if len(g.labels) < 2:
        return decode
    methods = {g.verdict(k, c).delta.method.split("+")[0] for k, c, _ in family_axes(g)
               if g.verdict(k, c).delta is not None and g.verdict(k, c).delta.change != "same"}
    how = [text for name, text in (
        ("repeats", "Welch's t test on the per-repeat values"),
        ("repeats-1", "a t prediction test where one side ran once"),
        ("calibrated", "for single runs, this machine's calibrated run-to-run spread"),
        ("floor", f"for single runs, an assumed run-to-run floor of ±{noise.floor_pct(noise.DEFAULT_RUN_SD):.0%}"),
        ("disturbed", "single runs on a busy machine are not judged"),
    ) if name in methods]
    return (f"A winner is named only beyond noise ({'; '.join(how or ['nothing to test'])}); Holm's procedure "
            f"over the rows keeps the chance of any false winner at {noise.ALPHA:.0%}. {decode} "
            "Method: `docs/reports.md`.")


def order_note(g: Group) -> str:
    """How the sweep ordered its jobs, when it matters (repeats, or several presets)."""
    jobs = [j for row in g.grid.values() for j in row.values()]
    reps = max((j.repeats for j in jobs), default=1)
    modes = {j.facts.order.mode for j in jobs}
    merged = [j for j in jobs if j.facts.order.merged_rounds]
    if merged and modes <= {"interleaved", "random"}:
        mode = "random" if "random" in modes else "interleaved"
        seed = merged[0].facts.order.seed
        how = ("a seeded random order of the presets and levels within each round "
               f"(order=random, order_seed={seed})" if mode == "random" else
               "the sweep's own order within each round (order=interleaved)")
        return (f"**Order:** each of the {reps} repeats ran as its own job, round by round over every preset "
                f"and level ({how}), so drift during the sweep is spread over all presets instead of "
                "landing on one; each preset's server started once per round.")
    if reps > 1 and len(g.labels) > 1:
        why = "order=grouped" if "grouped" in modes else "not recorded: an older benchrun, which always did so"
        return (f"**Order:** each job's {reps} repeats ran back to back, preset after preset ({why}): drift "
                "during the sweep lands on whichever preset ran then, which the repeats' spread does not "
                "see. Prefer order=interleaved (the default) for comparisons.")
    return ""


def build_blocks(jobs: list[Job], groups: list[Group], charts: dict[str, dict[str, Path]], root: Path,
                 cap: Optional[dict] = None, extra: Optional[dict[str, Path]] = None) -> list[Block]:
    title = _title(groups)
    ok = [j for j in jobs if j.ok] or jobs
    blocks: list[Block] = [
        Heading(1, f"Benchmark: {title}"),
        Para(f"**Date:** {_date(jobs)} · **Hardware:** {_hardware(jobs)} · **Workload:** "
             + "; ".join(dict.fromkeys(_workload(j) for j in ok))),
        Para(f"Generated by `benchrun report` from {len(jobs)} result file(s) in `{root}` "
             f"(run {ok[0].result.get('run_id', '?')}); every number below is read from them."),
    ]
    extra = extra or {}
    tail: list[tuple[str, list]] = []  # each group's Notes: they close the report

    def rel(name: str) -> Optional[str]:
        return str(extra[name].relative_to(root)) if name in extra else None

    if cap:  # a capacity search ran: its answer leads
        blocks += capacity_blocks(cap, rel("capacity"))
    blocks += depth_blocks(jobs, rel("depth"))
    if groups:
        blocks += models_under_test(groups)
    for g in groups:
        suffix = f" — workload `{g.workload}`" if len(groups) > 1 else ""
        gcharts = charts.get(g.workload, {})
        if gcharts:
            blocks.append(Heading(2, "Charts" + suffix))
            for name, p in gcharts.items():
                blocks += [Heading(3, CHART_TITLES[name]), Image(str(p.relative_to(root)), CHART_TITLES[name])]
        blocks += [Heading(2, "Summary" + suffix)] + summary_table(g)
        blocks.append(Para(verdict_note(g)))
        on = order_note(g)
        if on:
            blocks.append(Para(on))
        by_capacity = [capacity_pick(cap)] if cap and capacity_pick(cap) else []
        found, notes = key_findings(g, by_capacity)
        blocks += [Heading(2, "Key Findings" + suffix), Bullets(found or ["Nothing to compare."])]
        if notes:
            tail.append((suffix, notes))
        blocks += [Heading(2, "Recommendation" + suffix)] + [Para(p) for p in by_capacity + recommendation(g)]
        blocks += [Heading(2, "Detailed Results" + suffix)] + detailed(g)
        blocks += [Heading(2, f"Side Tasks at C{g.cmax}" + suffix)] + side_tasks_section(g)
        code = generated_code(g)
        if code:
            blocks += [Heading(2, f"Generated Code at C{g.cmax}" + suffix)] + code
    if not groups:
        blocks.append(Para("**No job finished successfully**: there are no measurements to report."))
    blocks += failed_jobs(jobs)
    blocks += prerequisites(jobs)
    blocks += reproducing(jobs, root)
    for suffix, notes in tail:
        blocks += [Heading(2, "Notes" + suffix), Bullets(notes)]
    return blocks

