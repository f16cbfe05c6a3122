"""The code behind each PASS/FAIL: for every preset at the highest concurrency, each checked
turn of each agent (its first repeat) shown as the code block its checks judged, under the
verdict and the first failed check's reason. Reply text lives in requests.jsonl, not in
result.json; a dir without it says so instead of showing nothing."""
from __future__ import annotations

from typing import Optional

from benchrun.analysis.jobs import Job
from benchrun.analysis.verdicts import Group
from benchrun.checks.extract import extract_code, fenced_blocks
from benchrun.report.blocks import Block, Code, Para

MAX_LINES = 40  # a report is read, not scrolled: longer code is cut with a pointer to the record


def generated_code(g: Group) -> list[Block]:
    out: list[Block] = []
    for lab in g.labels:
        job = g.job(lab, g.cmax)
        if job is not None:
            out += _preset(lab, job)
    return out


def _preset(lab: str, job: Job) -> list[Block]:
    firsts: dict[str, dict] = {}
    for t in job.result.get("tasks") or []:
        if t.get("checks") and t.get("agent") not in firsts:
            firsts[t["agent"]] = t
    if not firsts:
        return []
    replies: dict[tuple, str] = {}
    for r in job.records:
        if "agent" in r.tags:
            replies.setdefault((r.tags["agent"], r.tags.get("turn"), r.repeat), r.text if r.ok else "")
    if not replies:
        where = "holds no agent's reply" if job.records else "is missing"
        return [Para(f"**{lab}**: `{job.dir.name}/requests.jsonl` {where}, so the code behind the "
                     "verdicts cannot be shown.")]
    out: list[Block] = []
    for agent, t in firsts.items():
        for turn in sorted({c.get("turn") for c in t["checks"]}, key=lambda k: k or 0):
            checks = [c for c in t["checks"] if c.get("turn") == turn]
            text = replies.get((agent, turn, t.get("repeat", 0)))
            if text is None:  # repeats merged from separate jobs restart their numbering
                text = next((v for (a, k, _), v in replies.items() if a == agent and k == turn), None)
            out.append(Para(_caption(lab, t, turn, checks)))
            out.append(_code(text, job))
    return out


def _caption(lab: str, t: dict, turn: Optional[int], checks: list[dict]) -> str:
    name = " ".join(str(x) for x in (t.get("agent"), t.get("title")) if x)
    states = [c.get("passed") for c in checks]
    word = "not run" if None in states else ("PASS" if all(states) else "FAIL")
    failed = next((c for c in checks if c.get("passed") is not True), None)
    told = failed is not None and failed.get("truncated")  # its reason already says the turn was cut
    cut = " (cut at max_tokens)" if turn in (t.get("truncated_turns") or []) and not told else ""
    why = ""
    if failed is not None:
        reason = str(failed.get("reason") or "").strip().splitlines()
        why = f" — `{failed.get('name')}`: {reason[0][:200] if reason else 'failed'}"
    return f"**{lab}** · {name} · turn {turn}{cut}: **{word}**{why}"


def _code(text: Optional[str], job: Job) -> Block:
    if not text:
        return Para("(no reply: the request failed or was not sent)")
    blocks = fenced_blocks(text)
    body = extract_code(text) if blocks else text
    lang = next((tag for tag, b in blocks if b == body and tag), "python" if blocks else "text")
    lines = body.rstrip("\n").splitlines()
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES] + [f"# … {len(lines) - MAX_LINES} more lines: the whole reply is in "
                                     f"{job.dir.name}/requests.jsonl"]
    return Code("\n".join(lines), lang)
