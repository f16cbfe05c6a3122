"""The SSE decoder and the stream classifier, on hand-made byte chunks."""
from __future__ import annotations

import json

from benchrun.load.decode import parse_stream
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


# The fast paths of parse_stream (no JSON decoding of a chunk shaped like the last content chunk;
# llama.cpp's flat per-chunk `timings` cut off before decoding): on compact, llama.cpp-ordered
# chunks they must give exactly what decoding every event gives.

def _llama(content=None, n=None, created=1, finish=None, delta_=None, **extra) -> bytes:
    d = delta_ if delta_ is not None else {"content": content}
    obj = {"choices": [{"finish_reason": finish, "index": 0, "delta": d}], "created": created,
           "id": "chatcmpl-1", "model": "m", "system_fingerprint": "b1", "object": "chat.completion.chunk",
           **extra}
    if n is not None:
        obj["timings"] = {"prompt_n": 8, "prompt_ms": 1.5, "predicted_n": n, "predicted_ms": n * 9.5,
                          "predicted_per_second": 105.2}
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


def _slow(chunks):
    """The same stream with every event decoded: spaced JSON defeats both fast paths."""
    out = []
    for t, c in chunks:
        parts = [p for p in c.split(b"\n\n") if p]
        out.append((t, b"".join(b"data: " + (json.dumps(json.loads(p[6:])).encode() if p[6:] != b"[DONE]"
                                              else p[6:]) + b"\n\n" for p in parts)))
    return _record(out)


def test_fast_paths_give_what_decoding_every_event_gives():
    words = ["Hel", "lo", ' "quoted"', " back\\slash", " caf\u00e9", " \u4e16\u754c", "!"]
    chunks = [(101, _llama(delta_={"role": "assistant", "content": None}, n=0))]
    for i, w in enumerate(words):
        # `created` ticks over mid-stream, as llama.cpp's does each second; two events share a chunk.
        chunks.append((110 + i, _llama(w, n=i + 1, created=1 if i < 3 else 2)))
    chunks[-1] = (chunks[-1][0], chunks[-1][1] + _llama(" end", n=len(words) + 1, created=2))
    chunks.append((130, _llama(delta_={}, finish="stop", n=len(words) + 1)))
    chunks.append((131, b'data: {"choices":[],"usage":{"completion_tokens":9},"timings":{"predicted_n":9,'
                        b'"predicted_ms":85.5}}\n\n'))
    chunks.append((132, b"data: [DONE]\n\n"))
    fast, slow = _record(chunks), _slow(chunks)
    assert fast.text == "".join(words) + " end" and fast.ok
    for name in ("event_ns", "event_kinds", "text", "event_tokens", "token_source", "timings", "usage",
                 "finish_reason", "done", "error"):
        assert getattr(fast, name) == getattr(slow, name), name
    assert fast.event_tokens == [0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0] and fast.timings["predicted_ms"] == 85.5


def test_a_long_stream_gives_what_decoding_every_event_gives():
    """150 template events, broken by a new `created`, a content string ending in an escaped
    backslash, one ending at an escaped quote, a float count and a nested object; escapes and
    non-ASCII content throughout; with and without the stream's end."""
    words = [(f"w{i}" if i % 7 else "a\nb\t\u00e9") for i in range(150)]  # JSON escapes
    words[40], words[41], words[90] = "ends\\", 'q"q', "\u4e16"
    chunks = [(100, _llama(delta_={"role": "assistant", "content": None}, n=0))]
    for i, w in enumerate(words):
        raw = _llama(w, n=i + 1, created=1 + i // 60)
        if i == 70:
            raw = raw.replace(b'"predicted_n":71,', b'"predicted_n":71.0,')
        if i == 110:
            raw = raw.replace(b'"predicted_ms"', b'"extra":{"k":1},"predicted_ms"')
        chunks.append((101 + i, raw))
    tail = chunks[:]
    chunks += [(300, _llama(delta_={}, finish="stop", n=len(words))), (301, b"data: [DONE]\n\n")]
    for stream in (chunks, tail):
        fast, slow = _record(stream), _slow(stream)
        for name in ("event_ns", "event_kinds", "text", "event_tokens", "token_source", "timings",
                     "finish_reason", "done", "error"):
            assert getattr(fast, name) == getattr(slow, name), name
    assert fast.text == "".join(words) and b"a\\nb\\t" in chunks[1][1]
    assert fast.event_kinds == "r" + "c" * len(words) and fast.event_tokens[71:74] == [0, 2, 1]


def test_a_chunk_that_only_looks_like_the_template_is_decoded():
    """Same bytes around the content, but a different event: a finish reason, or a content
    string that would end early. Each must be read as the decoder reads it."""
    chunks = [(101, _llama("a", n=1)), (102, _llama("b", n=2)),
              (103, _llama("c", n=3, finish="length")), (104, _llama('x","y', n=4)),
              (105, b"data: [DONE]\n\n")]
    fast, slow = _record(chunks), _slow(chunks)
    assert fast.event_kinds == slow.event_kinds == "ccccd"
    assert fast.finish_reason == "length" and fast.text == slow.text == 'abcx","y'


def test_events_that_match_the_template_up_to_predicted_n_only_are_decoded():
    """After two template events, events that are the same bytes up to predicted_n's value but
    differ after it: a nested object, a float count, a member after the timings object, a
    backslash. Each must be read as decoding every event reads it."""
    def after_n(n: int, tail: bytes) -> bytes:
        raw = _llama("z", n=n)
        return raw[:raw.index(b'"predicted_n":') + 14] + tail + b"\n\n"
    chunks = [(101, _llama("a", n=1)), (102, _llama("b", n=2)),
              (103, after_n(3, b'3,"extra":{"k":1}}}')),
              (104, after_n(4, b'4.0,"predicted_ms":1}}')),
              (105, after_n(5, b'5},"usage":{"completion_tokens":5}}')),
              (106, after_n(6, b'6,"note":"a\\"b"}}')),
              (107, _llama("c\nd", n=7)),  # an escaped newline in the content
              (108, _llama("e", n=8)), (109, after_n(9, b'9,"x":1},"y":2}')),
              (110, b"data: [DONE]\n\n")]
    fast, slow = _record(chunks), _slow(chunks)
    for name in ("event_kinds", "text", "event_tokens", "timings", "usage", "error"):
        assert getattr(fast, name) == getattr(slow, name), name
    assert fast.usage == {"completion_tokens": 5} and fast.text == "abzzzzc\nde" + "z"
    assert fast.event_tokens == [1, 1, 1, 0, 2, 1, 1, 1, 1, 0] and fast.timings["x"] == 1  # the last, decoded whole
    bad = _record(chunks[:2] + [(103, after_n(3, b'3,"x":{"k":1}}'))])  # unbalanced: not JSON
    assert bad.event_kinds == "cce" and bad.error.startswith("malformed SSE event")


def test_timings_that_are_not_flat_or_not_last_are_still_counted():
    nested = (b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"a"}}],'
              b'"timings":{"predicted_n":1,"extra":{"k":1}}}\n\n')
    not_last = (b'data: {"timings":{"predicted_n":2},"choices":[{"finish_reason":null,"index":0,'
                b'"delta":{"content":"b"}}]}\n\n')
    float_n = (b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"c"}}],'
               b'"timings":{"predicted_n":3.0}}\n\n')
    r = _record([(101, nested), (102, not_last), (103, float_n), (104, b"data: [DONE]\n\n")])
    assert r.event_kinds == "cccd" and r.text == "abc"
    assert r.event_tokens == [1, 1, 0, 0] and r.token_source == "timings"
    assert r.timings == {"predicted_n": 3.0}  # the last event's, decoded (not cut: not an int)
    # A member after the timings object that ends in `}}` too: cutting there would lose it.
    after = (b'data: {"choices":[],"timings":{"predicted_n":3,"x":1},"usage":{"completion_tokens":3}}\n\n')
    u = _record([(101, after), (102, b"data: [DONE]\n\n")])
    assert u.usage == {"completion_tokens": 3} and u.event_kinds == "ud"


def test_whole_event_chunks_and_split_ones_decode_alike():
    """clean_events (whole `data:` events per chunk) against the general decoder: the same
    stream cut mid-event, so only the general one can read it, gives the same record."""
    from benchrun.load.sse import clean_events, iter_event_bytes

    body = b"".join(_llama(w, n=i + 1) for i, w in enumerate(["a", "b", "c"])) + b"data: [DONE]\n\n"
    whole = [(101, body[:body.index(b"data: ", 10)]), (102, body[body.index(b"data: ", 10):])]
    cut = [(101, body[:7]), (101, body[7:body.index(b"data: ", 10)]), (102, body[body.index(b"data: ", 10):])]
    assert clean_events(whole) == tuple(map(list, zip(*iter_event_bytes(whole))))
    assert clean_events(cut) is None
    a, b = _record(whole), _record(cut)
    assert (a.event_ns, a.event_kinds, a.text, a.event_tokens) == (b.event_ns, b.event_kinds, b.text, b.event_tokens)
    assert a.event_kinds == "cccd" and a.event_ns == [1, 2, 2, 2]
