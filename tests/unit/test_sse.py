"""The SSE decoder and the stream classifier, on hand-made byte chunks."""
from __future__ import annotations

import json

from benchrun.load.client import parse_stream
from benchrun.load.records import RequestRecord
from benchrun.load.sse import iter_events


def ev(obj) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def delta(**d):
    return {"choices": [{"index": 0, "delta": d, "finish_reason": None}]}


def test_events_split_across_chunks_take_the_completing_chunk_time():
    chunks = [(1, b"data: {\"a\""), (2, b": 1}\n"), (3, b"\ndata: [DONE]\n\n")]
    assert list(iter_events(chunks)) == [(3, '{"a": 1}'), (3, "[DONE]")]


def test_line_endings_comments_multiline_and_unterminated_tail():
    chunks = [(1, b": keep-alive\r\n\r\ndata: x\r\ndata: y\r\n\r\n"), (2, b"data:z\r"), (3, b"\r"),
              (4, b"event: ping\nid: 3\n\ndata: tail")]
    assert list(iter_events(chunks)) == [(1, "x\ny"), (3, "z"), (4, "tail")]
    # \r\n split across chunks is one line break, and the event is stamped when it completes.
    split = [(1, b"data: a\r"), (2, b"\n\r"), (3, b"\ndata: b\r\n\r\n")]
    assert list(iter_events(split)) == [(2, "a"), (3, "b")]


def test_megabyte_line():
    big = "x" * 3_000_000
    chunks = [(i, part) for i, part in enumerate([ev({"t": big})[:1_000_000], ev({"t": big})[1_000_000:]])]
    [(ns, data)] = list(iter_events(chunks))
    assert ns == 1 and json.loads(data)["t"] == big


def _record(chunks):
    r = RequestRecord(id=0, start_ns=100, status=200)
    parse_stream(r, chunks)
    return r


def test_classifier_kinds_text_usage_timings():
    usage = {"choices": [], "usage": {"completion_tokens": 3, "prompt_tokens": 5},
             "timings": {"predicted_n": 3, "predicted_per_second": 50.0}}
    fin = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    chunks = [(110, ev(delta(role="assistant", content=None))), (120, ev(delta(reasoning_content="hm"))),
              (130, ev(delta(content=""))), (140, ev(delta(content="A"))), (150, ev(delta(content="B"))),
              (160, ev(fin) + ev(usage) + b"data: [DONE]\n\n")]
    r = _record(chunks)
    assert r.event_kinds == "rtoccfud"
    assert r.event_ns == [10, 20, 30, 40, 50, 60, 60, 60]
    assert r.text == "AB" and r.reasoning == "hm"
    assert r.finish_reason == "length" and r.done and r.ok
    assert r.usage["completion_tokens"] == 3 and r.timings["predicted_per_second"] == 50.0


def test_stream_errors_are_data():
    cut = _record([(110, ev(delta(content="A")))])
    assert cut.error == "stream ended without [DONE]" and not cut.ok
    empty = _record([])
    assert empty.error == "empty response body"
    bad = _record([(110, b"data: {not json\n\n"), (120, b"data: [DONE]\n\n")])
    assert bad.error.startswith("malformed SSE event") and bad.event_kinds == "ed"
    srv = _record([(110, ev({"error": {"code": 500, "message": "out of context"}})), (120, b"data: [DONE]\n\n")])
    assert srv.error == "server error: out of context"


def test_mixed_reasoning_and_content_delta_is_the_first_answer_token():
    """At a </think> boundary some servers send reasoning and content in one delta: that
    event carries the first answer token, so TTFA must stop there."""
    from benchrun.measure import metrics as M

    chunks = [(101, ev(delta(role="assistant"))), (102, ev(delta(reasoning_content="hmm"))),
              (103, ev(delta(reasoning_content=".", content="Answer"))), (104, ev(delta(content=" more"))),
              (105, b"data: [DONE]\n\n")]
    r = _record(chunks)
    assert r.event_kinds == "rtccd" and r.text == "Answer more" and r.reasoning == "hmm."
    assert M.ttft_ms(r) == 2 / 1e6 and M.ttfa_ms(r) == 3 / 1e6
    # vLLM's newer field name for the same thing.
    v = _record([(101, ev(delta(reasoning="x"))), (102, ev(delta(content="y"))), (103, b"data: [DONE]\n\n")])
    assert v.event_kinds == "tcd" and v.reasoning == "x"


def test_null_error_field_and_empty_keepalive_are_not_failures():
    chunk = {**delta(content="A"), "error": None}
    r = _record([(110, ev(chunk)), (115, b"data:\n\n"), (120, b"data: [DONE]\n\n")])
    assert r.ok and r.event_kinds == "cod" and r.text == "A"
