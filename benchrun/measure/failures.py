"""Why requests failed: one cause per failed request (the HTTP status and what the server said,
else the transport's error class), what to change for the causes benchrun recognises, and the
failures of a run grouped by cause (result.json metrics.failures). Pure, over RequestRecords."""
from __future__ import annotations

import json
from typing import Any, Literal, Optional, TypedDict

from benchrun.load.records import NOT_SENT, RequestRecord


class _Cause(TypedDict):
    cause: str  # the group key: "HTTP 400 exceed_context_size_error", "ServerDisconnectedError", ...
    status: Optional[int]
    type: Optional[str]  # the server's error type
    message: str


class FailureCause(_Cause, total=False):
    """What made one request fail (failure_cause); llama.cpp's context error adds both sizes."""
    n_prompt_tokens: int
    n_ctx: int


class FailureGroup(FailureCause):
    """An entry of result.json metrics.failures: a cause, how often, and what to change."""
    count: int
    fix: str


_SIZES: tuple[Literal["n_prompt_tokens"], Literal["n_ctx"]] = ("n_prompt_tokens", "n_ctx")


def _http_error(error: str) -> tuple[Optional[int], dict[str, Any]]:
    """(status, the server's error object) from an "HTTP 400: {json}" error string."""
    head, _, body = error.partition(": ")
    try:
        status = int(head.split()[1])
    except (IndexError, ValueError):
        return None, {}
    try:
        obj = json.loads(body)
    except ValueError:
        return status, {"message": body[:300]} if body else {}
    err = obj.get("error", obj) if isinstance(obj, dict) else {}
    return status, err if isinstance(err, dict) else {"message": str(err)[:300]}


def failure_cause(r: RequestRecord) -> FailureCause:
    """What made a request fail, as one group key plus what the server said: HTTP status and
    the server's error type/message (llama.cpp: `{"error": {"code", "message", "type", ...}}`),
    else the transport's error class ("ServerDisconnectedError", "read timeout", ...)."""
    err = r.error or (f"HTTP {r.status}" if r.status not in (None, 200) else "unknown")
    if err.startswith("HTTP "):
        status, obj = _http_error(err)
        etype = obj.get("type") or (f"status {status}" if status is not None else None)
        out: FailureCause = {"cause": f"HTTP {status} {etype}" if status is not None else err[:80], "status": status,
               "type": obj.get("type"), "message": str(obj.get("message") or err)[:300]}
        for k in _SIZES:  # llama.cpp's context error names both sizes
            if isinstance(obj.get(k), int):
                out[k] = obj[k]
        return out
    head = err.split(":", 1)[0].strip()
    return {"cause": head[:80], "status": r.status, "type": None, "message": err[:300]}


_FIXES = {
    "exceed_context_size_error": "the conversation plus max_tokens does not fit one slot's context "
                                 "(ctx_size / parallel unless kv_unified): raise model.ctx_size, lower "
                                 "model.parallel or set model.kv_unified=true, or lower max_tokens "
                                 "(workload.max_tokens_cap)",
    "read timeout": "the server went silent: raise load.request_timeout_s, or look in server.log",
    "connect timeout": "the server did not accept connections: is it overloaded or gone? see server.log",
    "ServerDisconnectedError": "the server closed the connection mid-request: see server.log (crash, "
                               "or a proxy that drops idle connections: try load.reuse_connections=never)",
    NOT_SENT.split(":")[0]: "the run's time (load.duration_s) ended while it waited for a slot",
}


def failure_fix(cause: FailureCause) -> str:
    """What to change, for the causes benchrun recognises; else where to look."""
    for key in (cause.get("type"), cause.get("cause")):
        if key is not None and key in _FIXES:
            return _FIXES[key]
    status = cause.get("status")
    if isinstance(status, int) and status >= 500:
        return "a server-side error: see server.log for the server's own account"
    if isinstance(status, int) and status >= 400:
        return "the server refused the request as sent: check the workload's extra_body and max_tokens"
    return "see requests.jsonl (error) and server.log"


def failures_by_cause(records: list[RequestRecord]) -> list[FailureGroup]:
    """Failed requests grouped by cause, most frequent first: {cause, status, type, count,
    message (the first one seen), fix, and llama.cpp's n_prompt_tokens / n_ctx when given}."""
    groups: dict[str, FailureGroup] = {}
    for r in records:
        if r.ok:
            continue
        c = failure_cause(r)
        g = groups.get(c["cause"])
        if g is None:
            groups[c["cause"]] = {**c, "count": 1, "fix": failure_fix(c)}
        else:
            g["count"] += 1
            if "n_prompt_tokens" in c:  # keep the largest prompt that failed (an int: failure_cause)
                g["n_prompt_tokens"] = max(g.get("n_prompt_tokens") or 0, c["n_prompt_tokens"])
    return sorted(groups.values(), key=lambda g: (-g["count"], g["cause"]))
