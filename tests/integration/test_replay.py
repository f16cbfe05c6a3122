"""Replay of a JSONL trace against the real tiny server.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_replay.py."""
from __future__ import annotations

import asyncio
import json

from support import spy

from benchrun.config import WorkloadConfig
from benchrun.load.client import make_session
from benchrun.load.engine import Engine, LoadPlan
from benchrun.workloads import make_workload


def cfg(path, **kw):
    return WorkloadConfig(name="r", kind="replay", path=str(path), **kw)


def test_replay_sends_each_user_turn_with_the_recorded_history(tiny_server, tmp_path):
    lines = [
        {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u1"},
                      {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"},
                      {"role": "assistant", "content": "trailing answer, not sent"}], "max_tokens": 5},
        {"messages": [{"role": "user", "content": "solo"}], "temperature": 0.5},
    ]
    p = tmp_path / "trace.jsonl"
    p.write_text("\n".join(json.dumps(l) for l in lines) + "\n\n")
    w = make_workload(cfg(p, output_tokens=7, extra_body={"ignore_eos": True}), 2)
    specs = []

    async def go():
        async with make_session(60) as s:
            return await Engine(s, tiny_server.url + "/v1/chat/completions").run(
                [spy(c, specs) for c in w.conversations(0)], LoadPlan(concurrency=2))

    recs, _ = asyncio.run(go())
    assert all(r.ok for r in recs) and len(recs) == 3
    turns = sorted((s.tags["conversation"], s.tags["turn"], s.max_tokens, len(s.messages)) for s in specs)
    assert turns == [(0, 1, 5, 2), (0, 2, 5, 4), (1, 1, 7, 1)]
    second = next(s for s in specs if s.tags == {"conversation": 0, "turn": 2})
    assert second.messages == lines[0]["messages"][:4]  # the trace's own reply, not the model's
    assert {r.usage["completion_tokens"] for r in recs} == {5, 7}
    assert next(s for s in specs if s.tags["conversation"] == 1).body["temperature"] == 0.5
    assert w.describe()["conversations"] == 2 and w.describe()["turns"] == 3
