"""The post-stream decode: a request's stamped raw chunks -> its record's events, text, usage,
timings and event_tokens (the tokens each event carried, where the server said: llama.cpp's
cumulative `timings.predicted_n` per chunk, or one `logprobs.content` entry per token).
It runs once per request after its stream has ended (client.fetch only stamps chunks), and its
CPU is part of every token's cost: benchmarks/client_overhead.py measures it."""
from __future__ import annotations

import json
from typing import Any, Optional

from benchrun.load.records import (
    CONTENT,
    DONE,
    ERROR,
    FINISH,
    OTHER,
    REASONING,
    ROLE,
    TOKEN_KINDS,
    USAGE,
    RequestRecord,
)
from benchrun.load.sse import clean_events, iter_event_bytes


def parse_stream(rec: RequestRecord, chunks: list[tuple[int, bytes]]) -> None:
    """Decode the stamped chunks into the record's events, text, usage, timings and the
    tokens each event carried (event_tokens, when the server said).

    Lean, since it runs once per request and its CPU is part of every token's cost
    (benchmarks/client_overhead.py): each event goes straight to the C JSON scanner (no
    json.loads wrapper), which must consume the whole event or it takes json.loads' path; and
    llama.cpp's per-chunk `timings` object (most of each chunk's bytes, nine numbers) is cut
    off before decoding when it is the flat last member of the event, as llama.cpp writes it:
    only its predicted_n is read, and the last one is decoded whole as rec.timings. (A cut
    timings object's other members are not checked for being valid JSON.)"""
    start = rec.start_ns
    event_ns = rec.event_ns
    kinds: list[str] = []
    text: list[str] = []
    reasoning: list[str] = []
    by_timings: list[int] = []  # cumulative timings.predicted_n per event (-1: none)
    by_logprobs: dict[int, int] = {}  # logprobs.content entries per event index, where any
    pre = suf_head = None  # the content-event template: the bytes before and after its string
    pre_n = suf_head_n = 0
    # ... and where the template event had a cut timings object: the bytes from the content's
    # closing quote up to its predicted_n's value (llama.cpp's prompt figures stay the same
    # through a stream), so such an event is checked in a dozen C calls.
    tsuf = None
    tsuf_n = t_at = 0
    clean = clean_events(chunks)
    if clean is None:
        pairs = list(iter_event_bytes(chunks))
        clean = [ns for ns, _ in pairs], [d for _, d in pairs]
    stamps, datas = clean
    event_ns.extend([ns - start for ns in stamps])
    for raw in datas:
        if raw == b"[DONE]":
            by_timings.append(-1)
            rec.done = True
            kinds.append(DONE)
            continue
        if not raw:  # an empty `data:` line: a keep-alive some proxies send
            by_timings.append(-1)
            kinds.append(OTHER)
            continue
        # The template event but for its content string and its predicted_n, and the rest of
        # its timings object flat (no braces or backslashes) and closing at the event's
        # second-last byte: a content event of that string and count, in a dozen C calls.
        if tsuf is not None and raw.startswith(pre):
            q = raw.find(b'"', pre_n)
            if q > pre_n and raw.startswith(tsuf, q):
                v0 = q + tsuf_n
                last = len(raw) - 1
                e = raw.find(b",", v0, last)
                v = raw[v0:e if e >= 0 else last - 1]
                if (v.isdigit() and raw[last] == 125 and raw.find(b"}", v0) == last - 1 and raw.find(b"{", v0) < 0
                        and raw.find(b"\\", pre_n) < 0):
                    try:
                        text.append(raw[pre_n:q].decode())
                    except UnicodeDecodeError:
                        pass
                    else:
                        by_timings.append(int(v))
                        kinds.append(CONTENT)
                        rec.timings = raw[q + t_at:last]
                        continue
        # An event that is the last plain content event byte for byte but for its content
        # string (one with no quote, backslash or invalid UTF-8 in it) and a flat timings
        # object at its end is a content event of that string: no JSON decoding, no copy of
        # the event. The template (the bytes before and after the string) is learnt from the
        # last content event the decoder read (below); `created` changing every second
        # merely makes it relearn.
        if pre is not None and raw.startswith(pre):
            q = raw.find(b'"', pre_n)
            if q > pre_n and raw.startswith(suf_head, q):
                r = q + suf_head_n
                if r == len(raw) - 1:
                    got = (-1, None) if raw[r] == 125 else None  # "}": no timings
                else:
                    got = _flat_timings(raw, r) if raw.startswith(_TIMINGS, r) else None
                if got is not None:
                    mid = raw[pre_n:q]
                    if b"\\" not in mid:
                        try:
                            content = mid.decode()
                        except UnicodeDecodeError:
                            content = ""
                        if content:
                            by_timings.append(got[0])
                            text.append(content)
                            kinds.append(CONTENT)
                            if got[1] is not None:
                                rec.timings = got[1]
                            continue
        data, n, seg = _cut_timings(raw)
        ev = _scan(data)
        if ev is _MALFORMED and seg is not None:
            data, n, seg = raw, -1, None
            ev = _scan(data)
        by_timings.append(n)
        if ev is _MALFORMED:
            text_data = raw.decode("utf-8", "replace")
            try:
                ev = json.loads(text_data)  # what the scanner refused, e.g. leading whitespace
            except ValueError:
                kinds.append(ERROR)
                rec.error = rec.error or f"malformed SSE event: {text_data[:120]!r}"
                continue
        # The usual token event, classified in line (the same answer _classify and _count give):
        # one choice whose delta is a non-empty content string and nothing else, no finish
        # reason, no usage, error, timings or logprobs left in the event.
        if type(ev) is dict and len(ev) - ("object" in ev) - ("model" in ev) - ("id" in ev) - (
                "created" in ev) - ("system_fingerprint" in ev) == 1:
            choices = ev.get("choices")
            if type(choices) is list and len(choices) == 1:
                choice = choices[0]
                if type(choice) is dict and choice.get("finish_reason") is None and choice.get("logprobs") is None:
                    delta = choice.get("delta")
                    if type(delta) is dict and len(delta) == 1:
                        content = delta.get("content")
                        if type(content) is str and content:
                            text.append(content)
                            kinds.append(CONTENT)
                            if seg is not None:
                                rec.timings = seg
                            k = data.find(b'"content":"') + 11
                            end = data.find(b'"', k)
                            if k >= 11 and end > k and data[k:end] == content.encode() and data.endswith(b"}"):
                                pre, suf_head = data[:k], data[end:-1]  # suf_head: all but the last "}"
                                pre_n, suf_head_n = len(pre), len(suf_head)
                                tsuf = None
                                if seg is not None:  # raw is data, cut at len(data) - 1
                                    j = raw.find(b'"predicted_n":', len(data) - 1)
                                    if j > 0:
                                        tsuf = raw[end:j + 14]
                                        tsuf_n, t_at = len(tsuf), suf_head_n + 11
                            continue
        try:
            kinds.append(_classify(ev, rec, text, reasoning))
        except (AttributeError, TypeError, IndexError, KeyError):  # valid JSON, wrong shape
            kinds.append(ERROR)
            rec.error = rec.error or f"unexpected SSE event: {raw[:120].decode('utf-8', 'replace')!r}"
        _count(ev, by_timings, by_logprobs)
        if seg is not None:  # in stream order, so a later uncut timings object still wins
            rec.timings = seg
    if isinstance(rec.timings, bytes):
        try:
            rec.timings = json.loads(rec.timings)
        except ValueError:
            rec.timings = None
    rec.event_kinds = "".join(kinds)
    rec.text = "".join(text)
    rec.reasoning = "".join(reasoning)
    rec.event_tokens, rec.token_source = _event_tokens(rec.event_kinds, by_timings, by_logprobs)
    if rec.error is None and rec.status == 200 and not rec.done:
        rec.error = "stream ended without [DONE]" if chunks else "empty response body"


_MALFORMED = object()  # _scan's "not one JSON value"
_SCAN = json.JSONDecoder().scan_once  # the C scanner on CPython: one call per event, no wrapper
_TIMINGS = b',"timings":{'


def _scan(data: bytes):
    """The one JSON value that is all of `data`, or _MALFORMED (also for what json.loads would
    accept, such as surrounding whitespace: the caller then asks json.loads)."""
    try:
        text = data.decode()
        ev, end = _SCAN(text, 0)
    except (ValueError, StopIteration):  # UnicodeDecodeError, JSONDecodeError; StopIteration: no value
        return _MALFORMED
    return ev if end == len(text) else _MALFORMED


def _cut_timings(data: bytes) -> tuple[bytes, int, bytes | None]:
    """(event without its timings, timings.predicted_n or -1, the timings object's bytes or None).
    Cut only when `"timings":{...}` is the event's last member, flat (no nested braces or
    brackets, no escapes) and holds an integer predicted_n: its closing brace is then the
    event's second-last byte. The byte sequence `,"timings":{` cannot lie inside a JSON string
    (a quote there would be escaped, after a backslash, not a comma), so the cut never splits one."""
    # Byte searches (each one C call), not a regex: this runs once per chunk.
    i = data.rfind(_TIMINGS)
    got = _flat_timings(data, i) if i >= 0 else None
    if got is None:
        return data, -1, None
    return data[:i] + b"}", got[0], got[1]


def _flat_timings(data: bytes, i: int) -> tuple[int, bytes] | None:
    """(predicted_n, the object's bytes) when `,"timings":{` at i opens a flat object with an
    integer predicted_n that closes at the event's second-last byte; else None."""
    if not data.endswith(b"}}"):
        return None
    seg = data[i + 11:-1]  # {...}
    if seg.count(b"{") != 1 or seg.count(b"}") != 1 or b"[" in seg or b"\\" in seg:
        return None
    j = seg.find(b'"predicted_n":')
    if j < 0:
        return None
    j += 14
    e = seg.find(b",", j)
    v = seg[j:e if e >= 0 else -1]
    return (int(v), seg) if v.isdigit() else None


def _count(ev: Any, by_timings: list, by_logprobs: dict) -> None:
    """Note what this event (the last in by_timings) says about token counts (see _event_tokens)."""
    if not isinstance(ev, dict):
        return
    t = ev.get("timings")
    if isinstance(t, dict) and isinstance(t.get("predicted_n"), int) and t["predicted_n"] >= 0:
        by_timings[-1] = t["predicted_n"]
    choices = ev.get("choices")
    lp = choices[0].get("logprobs") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    if isinstance(lp, dict) and isinstance(lp.get("content"), list):
        by_logprobs[len(by_timings) - 1] = len(lp["content"])


def _event_tokens(kinds: str, by_timings: list, by_logprobs: dict) -> tuple[Optional[list], Optional[str]]:
    """Tokens each event carried, and the source. llama.cpp's cumulative predicted_n counts
    only when token events carry it (with timings_per_token off it appears in the final
    chunk alone, which says nothing per chunk); each event gets the rise since the last count,
    so the usage chunk's rise is the tokens no content event showed (EOS, a dropped stop
    string). Logprobs count only when some token event has them."""
    token_idx = [i for i, k in enumerate(kinds) if k in TOKEN_KINDS]
    if any(by_timings[i] >= 0 for i in token_idx):
        out, last = [], 0
        append = out.append
        for n in by_timings:  # plain comparisons, not max(): this runs once per event
            if n > last:
                append(n - last)
                last = n
            else:
                append(0)
        return out, "timings"
    if any(by_logprobs.get(i) for i in token_idx):
        return [by_logprobs.get(i, 0) for i in range(len(kinds))], "logprobs"
    return None, None


def _classify(ev: Any, rec: RequestRecord, text: list, reasoning: list) -> str:
    if not isinstance(ev, dict):
        return OTHER
    if ev.get("error") is not None:  # some servers send "error": null on every chunk
        err = ev["error"]
        rec.error = rec.error or f"server error: {err.get('message', err) if isinstance(err, dict) else err}"
        return ERROR
    if ev.get("timings") is not None:
        rec.timings = ev["timings"]
    choices = ev.get("choices") or []
    if not choices:
        if ev.get("usage") is not None:
            rec.usage = ev["usage"]
            return USAGE
        return OTHER
    choice = choices[0]
    delta = choice.get("delta") or {}
    if choice.get("finish_reason"):
        rec.finish_reason = choice["finish_reason"]
    if ev.get("usage") is not None:
        rec.usage = ev["usage"]
    # A token is a non-empty content or reasoning delta; the role-only first chunk is not.
    # llama.cpp names the reasoning field reasoning_content, newer vLLM `reasoning`.
    thought = delta.get("reasoning_content") or delta.get("reasoning")
    if thought:
        reasoning.append(thought)
    if delta.get("content"):  # also beside reasoning (a </think> boundary): the first answer token
        text.append(delta["content"])
        return CONTENT
    if thought:
        return REASONING
    if choice.get("finish_reason"):
        return FINISH
    if delta.get("role"):
        return ROLE
    return OTHER
