"""The report's content, in the seed report's structure, as blocks (see blocks.py): build_blocks
puts the sections in order, and the per-group results sections are here (Summary with its
Winner column and notes, Detailed Results, Failed Jobs). The opening facts and Models Under
Test are testbed.py's, Side Tasks side_tasks.py's; capacity, depth, findings, recommendation,
generated code and reproducing have their own modules."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from benchrun.analysis import noise
from benchrun.analysis.jobs import Job
from benchrun.analysis.verdicts import Group, family_axes
from benchrun.measure.views import BY_KEY
from benchrun.report.blocks import Block, Bullets, Heading, Image, Para, Table
from benchrun.report.capacity import blocks as capacity_blocks
from benchrun.report.capacity import pick as capacity_pick
from benchrun.report.depth import blocks as depth_blocks
from benchrun.report.findings import key_findings, task_rows
from benchrun.report.generated import generated_code
from benchrun.report.recommend import recommendation
from benchrun.report.rerun import prerequisites, reproducing, sweep_command  # noqa: F401 -- sweep_command: tests
from benchrun.report.side_tasks import side_tasks_section
from benchrun.report.testbed import hardware_line, models_under_test, report_title, run_date, workload_line
from benchrun.report.view import show, winner_cell

CHART_TITLES = {"radar": "Radar: model comparison", "degradation": "Degradation: performance vs concurrency",
                "throughput": "Throughput: tokens/s by concurrency", "side_tasks": "Side tasks at max concurrency",
                "latency_cdf": "Latency distributions (TTFT and ITL)"}


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
        row = [label] + [show(j, BY_KEY[key]) for j in cands.values()]
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
                         show(j, BY_KEY["ttft_ms.p50"], False), show(j, BY_KEY["ttft_ms.p90"], False),
                         show(j, BY_KEY["itl_ms.p50"], False), show(j, BY_KEY["decode_tok_s.hmean"], False),
                         show(j, BY_KEY["e2e_ms.p50"], False), show(j, BY_KEY["output_throughput_tok_s"], False),
                         show(j, BY_KEY["wall_s"], False)] + [show(j, BY_KEY[k], False) for k in extra]
                        + ([_fmt(_primary_last_turn(j))] if last_turn else []))
        out.append(Table(["Model", "ok/failed/truncated", "TTFT p50 (ms)", "TTFT p90 (ms)", "ITL p50 (ms)",
                          "Decode, harmonic mean (tok/s)", "E2E p50 (ms)", "Aggregate (tok/s)",
                          "Total time per repeat (s)"]
                         + [BY_KEY[k].label + (f" ({BY_KEY[k].unit})" if BY_KEY[k].unit else "") for k in extra]
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
    title = report_title(groups)
    ok = [j for j in jobs if j.ok] or jobs
    blocks: list[Block] = [
        Heading(1, f"Benchmark: {title}"),
        Para(f"**Date:** {run_date(jobs)} · **Hardware:** {hardware_line(jobs)} · **Workload:** "
             + "; ".join(dict.fromkeys(workload_line(j) for j in ok))),
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

