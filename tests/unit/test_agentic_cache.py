"""The agents' prompt cache per turn (benchrun/workloads/agentic_cache.py, report/cache.py) and the
long sessions' source slices (benchrun/workloads/agentic_session.py), on handmade records and a
fake tokenizer: misses are judged against the previous turn's prompt and get the right reason, a
server without cache figures reads "not reported", slices are cut in tokens with their own offset
per agent, and the context need counts them. No server, process or socket; the real-server half
is tests/integration/test_agentic_cache.py."""
from __future__ import annotations

import pytest

from benchrun.load.records import RequestRecord
from benchrun.workloads.agentic_cache import OFF, PREFIX, SLOTS, turn_rows, turn_table
from benchrun.workloads.agentic_session import Sources, fill


def rec(turn: int, cache_n=None, prompt_n=None, ok=True, ttft_ms=10.0) -> RequestRecord:
    t = None if cache_n is None else {"cache_n": cache_n, "prompt_n": prompt_n}
    return RequestRecord(id=turn, tags={"agent": "A", "turn": turn}, status=200 if ok else 500,
                         error=None if ok else "HTTP 500", event_ns=[int(ttft_ms * 1e6)], event_kinds="c",
                         timings=t, done=ok)


ON = {1: True, 2: True, 3: True}


def test_a_turn_that_reuses_its_history_hits_and_one_that_does_not_misses_with_its_reason():
    recs = [rec(1, 100, 400), rec(2, 500, 50), rec(3, 100, 600)]  # turn 3: only the system prompt back
    rows = turn_rows(recs, ON, in_flight=2, slots=2)
    assert [r["miss"] for r in rows] == [None, None, PREFIX]
    assert rows[1]["history_tokens"] == 500 and rows[1]["cache_share"] == round(500 / 550, 4)
    assert "history_tokens" not in rows[0]  # a first turn is not judged
    assert [r["miss"] for r in turn_rows(recs, ON, in_flight=3, slots=2)][2] == SLOTS
    assert [r["miss"] for r in turn_rows(recs, {1: True, 2: True, 3: False}, 3, 2)][2] == OFF


def test_a_failed_turn_leaves_the_next_one_unjudged_and_no_timings_is_not_reported():
    rows = turn_rows([rec(1, 0, 400), rec(2, ok=False), rec(3, 0, 900)], ON, 4, 1)
    assert [r["turn"] for r in rows] == [1, 3] and "history_tokens" not in rows[1] and rows[1]["miss"] is None
    t = turn_table(turn_rows([rec(1), rec(2), rec(3)], ON, 4, 1), 4, 1, True)
    assert t["misses"] is None and t["judged"] is None and "not reported" in t["note"]
    assert all(r["cache_share"] is None and r["misses"] is None for r in t["turns"])


def test_the_table_counts_misses_per_turn_and_says_why():
    a = turn_rows([rec(1, 0, 400, ttft_ms=5), rec(2, 100, 500, ttft_ms=50), rec(3, 100, 900, ttft_ms=90)], ON, 4, 2)
    b = turn_rows([rec(1, 100, 300, ttft_ms=7), rec(2, 400, 60, ttft_ms=8), rec(3, 100, 900, ttft_ms=70)], ON, 4, 2)
    t = turn_table(a + b, in_flight=4, slots=2, cache_prompt=True)
    by = {r["turn"]: r for r in t["turns"]}
    assert by[1]["judged"] == 0 and by[2]["judged"] == 2 and by[2]["misses"] == 1
    assert by[3]["misses"] == 2 and by[3]["miss_reasons"] == {SLOTS: 2}
    assert by[2]["ttft_ms_p50"] == 29.0 and by[2]["cache_share"] == round(500 / 1060, 4)
    assert t["misses"] == 3 and t["judged"] == 4
    assert t["note"].startswith("3 of 4 later turns missed") and "4 agents outnumbered 2 slots" in t["note"]
    hits = turn_table(b[:2], in_flight=4, slots=2, cache_prompt=True)
    assert hits["misses"] == 0 and "although 4 agents outnumbered 2 slots" in hits["note"] and "--cache-ram" in hits["note"]


class CharTokenizer:
    """One token per character (ids are code points): slices can be checked by length."""

    def tokenize(self, text, add_special):
        return [ord(c) for c in text]

    def detokenize(self, tokens):
        return "".join(chr(t) for t in tokens)

    def template(self, messages):
        return "".join(m["content"] for m in messages)


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "c.txt").write_text("".join(chr(ord("a") + i % 26) for i in range(1000)))
    return tmp_path


def test_slices_share_the_depth_in_tokens_and_each_agent_reads_from_its_own_offset(corpus):
    s = Sources(10, corpus)
    s.prepare(CharTokenizer(), [(0, 2, ["c.txt"] * 3), (1, 2, ["c.txt"] * 3)])
    first, second = s.slices(0, 2, ["c.txt"] * 3), s.slices(1, 2, ["c.txt"] * 3)
    assert [len(x) for x in first] == [4, 3, 3] and "".join(first) == "abcdefghij"  # consecutive, depth in all
    assert "".join(second) == "ghijklmnop"  # instance 1 of 2 starts half-way: offset 500, 500 % 26 = 6, "g"
    with pytest.raises(ValueError, match="asks more of source corpus 'c.txt'"):
        Sources(1001, corpus).slices(0, 1, ["c.txt"])
    assert Sources(0, corpus).slices(0, 1, ["c.txt"]) == [""]


def test_without_a_tokenizer_a_token_is_bytes_per_token_bytes(corpus):
    s = Sources(10, corpus)
    s.bytes_per_token = 3.0
    assert [len(x) for x in s.slices(0, 1, ["c.txt", "c.txt"])] == [15, 15]


def test_sources_are_pasted_after_the_other_placeholders_and_as_written():
    text, k = fill("A {{ source:c.txt }} B {{ source:c.txt }}", ["{{ S1.last }}", "x"], 0)
    assert text == "A {{ S1.last }} B x" and k == 2


def test_the_long_session_counts_its_depth_in_the_context_need_and_pastes_it(compose):
    from benchrun.workloads import make_workload

    small = make_workload(compose(["workload=agentic_long", "workload.depth=1000"]).workload, 2)
    big = make_workload(compose(["workload=agentic_long", "workload.depth=9000"]).workload, 2)
    n_small, n_big = small.context_need(), big.context_need()
    assert n_big.tokens - n_small.tokens == 8000 and n_small.estimated  # source is counted as cut: exactly depth
    big.prepare(CharTokenizer())
    real = big.context_need()
    assert not real.estimated and real.tokens > 9000
    conv = big.conversations(0)[1]
    spec = next(conv)
    [user] = [m for m in spec.messages if m["role"] == "user"]
    assert user["content"].startswith("[session 2.0.S1]")  # no earlier level or repeat shares this prefix
    assert len(user["content"]) > 9000 // 4  # a quarter of the depth (4 turns), one character a token here
    with pytest.raises(ValueError, match="no {{ source:FILE }} turn"):
        make_workload(compose(["workload=agentic_coding", "workload.depth=100"]).workload, 1)


def test_agentic_workloads_send_cache_prompt_on_and_the_switch_turns_it_off(compose):
    from benchrun.workloads import make_workload

    for name in ("agentic_coding", "agentic_long", "tetris_agents"):
        on = next(make_workload(compose([f"workload={name}"]).workload, 1).conversations(0)[0])
        assert on.body["cache_prompt"] is True, name
    off = next(make_workload(compose(["workload=agentic_coding", "workload.cache_prompt=false"]).workload, 1)
               .conversations(0)[0])
    assert off.body["cache_prompt"] is False


def test_the_report_table_shows_misses_and_the_sentence():
    from pathlib import Path

    from benchrun.analysis.jobs import Job
    from benchrun.report.cache import blocks

    rows = turn_rows([rec(1, 0, 400), rec(2, 10, 500)], ON, 4, 2)
    res = {"status": "ok", "model": {"name": "tiny"}, "concurrency": 4, "metrics": {},
           "workload": {"name": "agentic_long", "cache_turns": turn_table(rows, 4, 2, True)}}
    out = blocks([Job(Path("0_tiny_c4"), res)])
    table = next(b for b in out if hasattr(b, "rows"))
    assert ["tiny", "C4", "4 / 2", "2", "1", "10 ms", "510", "2%", "1 of 1"] in table.rows
    assert any("agents outnumbered 2 slots" in getattr(b, "text", "") for b in out)
    one_turn = {**res, "workload": {"name": "x", "cache_turns": turn_table(rows[:1], 1, 2, True)}}
    assert blocks([Job(Path("0_tiny_c1"), one_turn)]) == []


def test_cache_ram_reaches_both_backends_only_when_set(compose):
    import json as _json
    from pathlib import Path

    from benchrun.servers.embedded import Embedded
    from benchrun.servers.llama_server import llama_server_flags

    off = compose(["model=tiny", "model.cache_ram_mib=0"]).model
    default = compose(["model=tiny"]).model
    assert [f.value for f in llama_server_flags(off, Path("m.gguf"), 1) if f.name == "--cache-ram"] == ["0"]
    assert not [f for f in llama_server_flags(default, Path("m.gguf"), 1) if f.name == "--cache-ram"]
    assert _json.loads(Embedded().command(off, Path("m.gguf"), 1)[-1])["cache_ram_mib"] == 0
    assert _json.loads(Embedded().command(default, Path("m.gguf"), 1)[-1])["cache_ram_mib"] is None


def test_merged_rounds_report_every_rounds_turns():
    from pathlib import Path

    from benchrun.analysis.jobs import Job
    from benchrun.report.cache import blocks

    def res(turns):
        rows = turn_rows([rec(1, 0, 400), rec(2, *turns)], ON, 4, 2)
        return {"status": "ok", "model": {"name": "tiny"}, "concurrency": 4, "metrics": {}, "tasks": [{"cache": rows}],
                "workload": {"name": "agentic_long", "cache_turns": turn_table(rows, 4, 2, True)}}

    a, b = res((10, 500)), res((400, 10))  # round 1 missed turn 2, round 2 hit it
    merged = {**a, "tasks": a["tasks"] + b["tasks"]}
    job = Job(Path("0_tiny_c4"), merged, parts=[Job(Path("0"), a), Job(Path("1"), b)])
    table = next(x for x in blocks([job]) if hasattr(x, "rows"))
    assert any(r[3] == "2" and r[4] == "2" and r[-1] == "1 of 2" for r in table.rows), table.rows
