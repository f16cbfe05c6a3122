"""Multi-turn coding agents, declared in YAML (see docs/workloads.md).

An agent is a list of turns; each turn is a user message rendered from a template, sent with the
whole conversation so far (history accumulates as in a real chat). Two forms:

- concurrent (no `needs`): at concurrency C the first C agents run at once: C1 = primary alone,
  C2 = primary + S1, ...; beyond the list the side agents repeat (S1#2, S2#2, ...).
- pipeline (some agent has `needs`): every agent runs once per repeat, each as soon as the
  agents it needs have finished, independent ones in parallel (up to `concurrency` at a time).
  A waiting agent's conversation yields an awaitable, which the engine awaits.

Templates: `{{ NAME.last }}` (NAME's last reply; in a copy S1#2, its own name means itself),
`{{ NAME.code }}` (the code block of it),
`{{ NAME.turnK }}` (its K-th reply, 1-based), `{{ data:FILE }}` (a file shipped in
benchrun/workloads/data), `{{ source:FILE }}` (the next slice of a source corpus there: the
agent's references share `workload.depth` tokens, agentic_session.py). Nothing else in a prompt
is special, so code with braces is safe.

The prompt cache: every measured turn's cache_n / prompt_n / TTFT is kept per task, and
`summary` gives result.json's `workload.cache_turns` (per-turn table, misses and why: agentic_cache.py).
The context check counts the server's own tokens once `prepare` has its tokenizer."""
from __future__ import annotations

import asyncio

from benchrun.checks import (
    DATA_DIR,
    CheckContext,
    NoSandbox,
    isolation,
    run_check,
    task_verdict,
)
from benchrun.config import WorkloadConfig
from benchrun.load.client import RequestSpec
from benchrun.load.engine import Conversation
from benchrun.measure.metrics import (
    cut_at_max_tokens,
    e2e_ms,
    output_tokens,
    tpot_ms,
    ttft_ms,
)
from benchrun.servers.tokenizer import TokenizerError
from benchrun.workloads.agentic_cache import turn_rows, turn_table
from benchrun.workloads.agentic_session import SOURCE, Sources, fill, refs
from benchrun.workloads.agents import REF, Agent, Instance, parse_agents, render
from benchrun.workloads.base import Workload


class _Board:
    """One repeat's shared state: each agent's replies, and a 'finished' event per agent."""

    def __init__(self) -> None:
        self.outputs: dict[str, list[str]] = {}
        self.done: dict[str, asyncio.Event] = {}

    def event(self, name: str) -> asyncio.Event:
        return self.done.setdefault(name, asyncio.Event())

    async def wait(self, names: list[str]) -> None:
        for n in names:
            await self.event(n).wait()


class AgenticWorkload(Workload):
    own_fields = ("agents", "sandbox", "max_tokens_cap", "depth")

    def __init__(self, cfg: WorkloadConfig, concurrency: int):
        super().__init__(cfg, concurrency)
        self.agents = parse_agents(cfg)
        self.pipeline = any(a.needs for a in self.agents)
        self._needed = {n for a in self.agents for n in a.needs}
        self.isolation_pref = cfg.sandbox.isolation
        self.limits = cfg.sandbox.limits()
        if self.isolation_pref != "auto":  # fail now, with one line, if the machine lacks it
            try:
                isolation(self.isolation_pref)
            except NoSandbox as e:
                raise ValueError(f"workload.sandbox.isolation: {e}") from None
        self.sources = Sources(cfg.depth, DATA_DIR)
        files = [f for a in self.agents for f in self._source_files(a)]
        self.sources.check(files)
        if cfg.depth and not files:
            raise ValueError(f"workload.depth={cfg.depth}: workload {cfg.name!r} has no {{{{ source:FILE }}}} "
                             f"turn to paste that much source into (see conf/workload/agentic_long.yaml)")
        self.tokenizer = None
        self.tokens_note: str | None = None
        self._counted: dict[str, int] = {}
        self._table: dict | None = None

    @staticmethod
    def _source_files(agent: Agent) -> list[str]:
        return [f for t in agent.turns for f in refs(t.prompt)]

    def prepare(self, tokenizer) -> None:
        """With the server's tokenizer: source slices cut in its tokens, the context need counted
        in them. A server whose tokenizer endpoints do not answer (not llama.cpp's) gets the
        estimate, and result.json says so."""
        if tokenizer is not None:
            try:
                tokenizer.tokenize("a", False)
            except TokenizerError as e:
                tokenizer, self.tokens_note = None, f"no server tokenizer ({e}); token counts are estimates"
        self.tokenizer = tokenizer
        self._counted = {}
        insts = self.instances()
        self.sources.prepare(tokenizer, [(j, len(insts), self._source_files(i.agent)) for j, i in enumerate(insts)])

    def _slices(self, j: int, inst: Instance) -> list[str]:
        return self.sources.slices(j, len(self.instances()), self._source_files(inst.agent))

    def planned_requests(self) -> int:
        return sum(len(inst.agent.turns) for inst in self.instances())

    def instances(self) -> list[Instance]:
        """Which agents run at this concurrency (see the module docstring)."""
        if self.pipeline:
            return [Instance(a.name, a) for a in self.agents]
        n = len(self.agents)
        out = [Instance(a.name, a) for a in self.agents[:self.concurrency]]
        sides = self.agents[1:] or self.agents[:1]
        for i in range(self.concurrency - n):
            a = sides[i % len(sides)]
            out.append(Instance(f"{a.name}#{i // len(sides) + 2}", a))
        return out

    def _spec(self, inst: Instance, k: int, messages: list, max_tokens: int | None = None) -> RequestSpec:
        t = inst.agent.turns[k]
        body = {"temperature": t.temperature, "seed": t.seed, "cache_prompt": t.cache_prompt, **t.extra}
        # Only a reply that feeds a later turn or another agent must be decoded while others stream.
        needed = k + 1 < len(inst.agent.turns) or inst.agent.name in self._needed
        return RequestSpec(messages=messages, max_tokens=max_tokens or t.max_tokens, body=body,
                           tags={"agent": inst.label, "turn": k + 1, "role": inst.agent.role,
                                 "title": inst.agent.title}, reply_needed=needed)

    def _conversation(self, inst: Instance, board: _Board, j: int = 0, repeat: int = 0) -> Conversation:
        agent = inst.agent
        slices, used = self._slices(j, inst), 0
        # With the prompt cache on, a session line opens each conversation: an agent's first turn
        # must not find its prompt left in a slot by the same agent at an earlier level or repeat
        # (the server is reused); only the system prompt, as shared by real agents, may hit.
        tag = f"[session {self.concurrency}.{repeat}.{inst.label}]\n\n" if agent.turns[0].cache_prompt else ""
        try:
            if agent.needs:
                yield board.wait(agent.needs)  # the engine awaits it; we resume once inputs are in
            history = [{"role": "system", "content": agent.system}] if agent.system else []
            replies = board.outputs.setdefault(inst.label, [])
            for k, turn in enumerate(agent.turns):
                # `{{ S1.last }}` in S1's own prompt is this copy's reply: S1#2 must not read S1's.
                seen = {**board.outputs, agent.name: replies}
                text, used = fill(render(turn.prompt, seen), slices, used)
                history.append({"role": "user", "content": (tag if k == 0 else "") + text})
                rec = yield self._spec(inst, k, list(history))
                history.append({"role": "assistant", "content": rec.text})
                replies.append(rec.text)
        finally:
            board.event(inst.label).set()  # even on failure: dependants go on with what there is

    def conversations(self, repeat: int) -> list[Conversation]:
        board = _Board()
        return [self._conversation(inst, board, j, repeat) for j, inst in enumerate(self.instances())]

    def warmup(self) -> list[Conversation]:
        """One short request (the first agent's first turn, 8 tokens) to load the model."""
        inst = Instance("warmup", self.agents[0])
        first = self.agents[0].turns[0]
        msgs = ([{"role": "system", "content": inst.agent.system}] if inst.agent.system else []) + \
               [{"role": "user", "content": fill(render(first.prompt, {}), [], 0)[0]}]

        def one() -> Conversation:
            yield self._spec(inst, 0, msgs, max_tokens=min(8, first.max_tokens))

        return [one()]

    def evaluate(self, records: list) -> list[dict]:
        """One `tasks` entry per agent per repeat: latency, tokens, and every check's outcome."""
        ctx = CheckContext(limits=self.limits, isolation=self.isolation_pref)
        try:
            iso = isolation(self.isolation_pref)
        except NoSandbox:  # each code-running check says why it was not run
            iso = None
        by: dict[tuple[int, str], list] = {}
        for r in records:
            if not r.warmup and "agent" in r.tags:
                by.setdefault((r.repeat, r.tags["agent"]), []).append(r)
        tasks, rows = [], []
        in_flight = len(self.instances()) if not self.pipeline else min(self.concurrency, len(self.agents))
        for rep in sorted({r.repeat for r in records if not r.warmup}):
            for inst in self.instances():
                recs = sorted(by.get((rep, inst.label), []), key=lambda r: r.tags["turn"])
                task = self._task(inst, rep, recs, ctx, iso)
                task["cache"] = turn_rows(
                    recs, {k: t.cache_prompt for k, t in enumerate(inst.agent.turns, start=1)}, in_flight, self.slots)
                rows += task["cache"]
                tasks.append(task)
        self._table = turn_table(rows, in_flight, self.slots, bool(self.cfg.cache_prompt))
        return tasks

    def summary(self, records: list) -> dict:
        """result.json's workload.cache_turns: per-turn TTFT and cache share, misses and why (after evaluate)."""
        return {} if self._table is None else {"cache_turns": self._table}

    def context_need(self, bytes_per_token: float = 3.0):
        """The largest turn of any agent that runs at this concurrency, worst case: system +
        every user prompt so far + every earlier reply at its max_tokens + this turn's
        max_tokens. A reference to another agent's reply counts as that reply's max_tokens
        (`.last`, `.code`: its last turn's; `.turnK`: turn K's). Text is estimated."""
        from benchrun.preflight.context import TEMPLATE_TOKENS_PER_MESSAGE as PER_MSG
        from benchrun.preflight.context import ContextNeed, estimate_tokens

        self.sources.bytes_per_token = bytes_per_token  # without a tokenizer, slices are cut by it
        tok = self.tokenizer

        def est(text: str) -> int:
            if tok is None:
                return estimate_tokens(text, bytes_per_token)
            if text not in self._counted:  # the server's own count (a few short texts: cached)
                self._counted[text] = len(tok.tokenize(text, False))
            return self._counted[text]

        by_name = {a.name: a for a in self.agents}

        def prompt_tokens(template: str, budgets: list[int]) -> int:
            refs = sum(budgets)  # source slices: cut to exactly these many tokens
            template = SOURCE.sub("", template)
            for m in REF.finditer(template):
                if m.group(1):
                    refs += est((DATA_DIR / m.group(1)).read_text())
                else:
                    turns = by_name[m.group(2)].turns
                    k = int(m.group(3)[4:]) if m.group(3).startswith("turn") else len(turns)
                    refs += turns[min(max(k, 1), len(turns)) - 1].max_tokens
            return est(REF.sub("", template)) + refs + PER_MSG

        best, worst_each = None, []
        for inst in self.instances():
            a = inst.agent
            n = est(a.system) + PER_MSG if a.system else 0
            if a.turns[0].cache_prompt:  # the session line (see _conversation), at its longest repeat number
                n += est(f"[session {self.concurrency}.999.{inst.label}]\n\n")
            mine = 0
            budgets = Sources.budgets(len(self._source_files(a)), int(self.cfg.depth))
            for k, t in enumerate(a.turns, start=1):
                mine_refs = len(refs(t.prompt))
                n += prompt_tokens(t.prompt, budgets[:mine_refs])
                budgets = budgets[mine_refs:]
                mine = max(mine, n + t.max_tokens)
                if best is None or n + t.max_tokens > best.tokens:
                    best = ContextNeed(n + t.max_tokens, f"agent {inst.label}, turn {k}: system + "
                                       f"{k} prompt(s) + {k} x max_tokens", tok is None)
                n += t.max_tokens + PER_MSG  # the reply joins the history, at its worst
            worst_each.append(mine)
        if best is not None:  # concurrent agents all run at once; a pipeline `concurrency` at a time
            best.concurrent_tokens = sum(sorted(worst_each, reverse=True)[:self.concurrency])
        return best

    def describe(self) -> dict:
        d = {**super().describe(), "pipeline": self.pipeline, "agents_run": [i.label for i in self.instances()]}
        if self.tokens_note:
            d["prompt_tokens_note"] = self.tokens_note
        return d

    def _task(self, inst: Instance, rep: int, recs: list, ctx: CheckContext, iso: str | None) -> dict:
        agent = inst.agent
        texts = {r.tags["turn"]: (r.text if r.ok else "") for r in recs}
        # Turns the server stopped at max_tokens: a check that fails on one says so, since the
        # code may simply be cut short rather than wrong.
        cut = {r.tags["turn"]: agent.turns[r.tags["turn"] - 1].max_tokens
               for r in recs if cut_at_max_tokens(r)}
        checks = []
        for k, turn in enumerate(agent.turns, start=1):
            for spec in turn.checks:
                checks.append(_note_cut({**run_check(texts.get(k, ""), spec, ctx), "turn": k}, cut))
        for spec in agent.checks:
            checks.append(_note_cut({**run_check(texts.get(len(agent.turns), ""), spec, ctx),
                                     "turn": len(agent.turns)}, cut))
        ok = [r for r in recs if r.ok]
        last = recs[-1] if recs else None
        t_last = tpot_ms(last) if last is not None and last.ok else None
        first_ttft = ttft_ms(recs[0]) if recs and recs[0].ok else None
        return {
            "agent": inst.label, "title": agent.title, "role": agent.role, "repeat": rep,
            "turns": len(recs), "turns_planned": len(agent.turns),
            "requests_failed": len(recs) - len(ok) + (len(agent.turns) - len(recs)),
            "truncated_turns": sorted(cut),
            "latency_ms": round(sum(e2e_ms(r) for r in recs), 3),
            "ttft_ms": None if first_ttft is None else round(first_ttft, 3),
            "output_tokens": int(sum(output_tokens(r) or 0 for r in ok)),
            "last_turn_decode_tok_s": None if not t_last else round(1000.0 / t_last, 3),
            "passed": task_verdict(checks),
            "checks": checks,
            "isolation": iso,
        }


def _note_cut(check: dict, cut: dict) -> dict:
    """A failed check (not one that could not run) on a turn cut at max_tokens says so."""
    k = check.get("turn")
    if check.get("passed") is False and k in cut:
        check["truncated"] = True
        check["reason"] = (f"{check.get('reason') or 'failed'} (turn {k} was cut at max_tokens={cut[k]}: "
                           f"the reply may be incomplete)")
    return check
