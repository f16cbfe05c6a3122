"""Scrape llama.cpp's Prometheus `/metrics` at the start, every `interval_s` and at the end of
the measured run; keep counter deltas and gauge peaks.

Rates come from counter deltas: the two `*_tokens_seconds` gauges reset on every scrape, so
any scrape (ours or someone else's) would falsify them. One small GET per interval on the
job's session is the whole cost in the hot path."""
from __future__ import annotations

import asyncio
from typing import Any, Optional

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

PREFIX = "llamacpp:"
COUNTERS = ("prompt_tokens_total", "prompt_seconds_total", "tokens_predicted_total",
            "tokens_predicted_seconds_total", "n_decode_total", "prompt_tokens_cached_total")
PEAK_GAUGES = ("requests_processing", "requests_deferred")

Scrape = dict[str, float]  # one /metrics page: sample key -> value (parse_prometheus)


def parse_prometheus(text: str) -> Scrape:
    """Samples of the text exposition format -> {key: value}, parsed by prometheus_client. The
    key is the sample name without llama.cpp's prefix, and a labelled sample (other servers
    label theirs: vLLM's model_name, SGLang's ...) carries its labels, sorted: name{a="x",b="y"}.
    A page that is not Prometheus text raises ValueError."""
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name[len(PREFIX):] if sample.name.startswith(PREFIX) else sample.name
            if sample.labels:
                name += "{" + ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items())) + "}"
            out[name] = float(sample.value)
    return out


def summarize_scrapes(first: Scrape, last: Scrape, samples: list[Scrape], interval_s: float) -> dict[str, Any]:
    """Counter deltas between the first and last scrape, peaks of the gauges over all
    scrapes, and the server-side rates derived from the deltas: result.json server_metrics (a
    plain dict, as results.Result holds it; its schema describes the keys)."""
    deltas = {k: last[k] - first[k] for k in COUNTERS if k in first and k in last}
    peaks = {k: max(s[k] for s in samples if k in s) for k in PEAK_GAUGES
             if any(k in s for s in samples)}

    def ratio(a: str, b: str, scale: float = 1.0) -> Optional[float]:
        x, y = deltas.get(a), deltas.get(b)
        return x / y * scale if x is not None and y else None

    return {
        "available": True,
        "scrapes": len(samples),
        "interval_s": interval_s,
        "counters": deltas,
        "peaks": peaks,
        "prompt_tok_s": ratio("prompt_tokens_total", "prompt_seconds_total"),
        "predicted_tok_s": ratio("tokens_predicted_total", "tokens_predicted_seconds_total"),
        # Per-slot decode time per token: tokens_predicted_seconds sums each slot's time. Per
        # *token*, not per decode step: a request's time spans n - 1 steps (its first token came
        # with the prompt's logits) but counts n tokens, so this is low by 1/n against the per-step
        # figures (llama.cpp's own timings.predicted_per_token_ms, llama-bench tg, benchrun's
        # TPOT). The counters cannot count requests, so no n - 1 can be formed here
        # (docs/measurement.md, "Cross-checks against the server").
        "predicted_ms_per_token": ratio("tokens_predicted_seconds_total", "tokens_predicted_total", 1000.0),
        "tokens_per_decode": ratio("tokens_predicted_total", "n_decode_total"),
    }


class Scraper:
    """Usage: `s = Scraper(session, url); await s.start(); ...run...; result = await s.stop()`.
    A server without /metrics (not started with --metrics, or not llama.cpp) gives
    {"available": False, "reason": ...} and is not asked again."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, interval_s: float = 0.5,
                 headers: dict[str, str] | None = None) -> None:
        self.session = session
        self.url = base_url.rstrip("/") + "/metrics"
        self.interval_s = interval_s
        self.headers = headers
        self.samples: list[Scrape] = []
        self.reason: Optional[str] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._stopping = asyncio.Event()

    async def scrape(self) -> Optional[Scrape]:
        try:
            async with self.session.get(self.url, headers=self.headers,
                                        timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status != 200:
                    self.reason = f"GET /metrics answered HTTP {resp.status} (start llama-server with --metrics)"
                    return None
                text = await resp.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            self.reason = f"GET /metrics failed: {type(e).__name__}"
            return None
        try:
            sample = parse_prometheus(text)
        except ValueError as e:
            self.reason = f"/metrics is not Prometheus text ({e})"
            return None
        if not any(k in sample for k in COUNTERS):
            self.reason = "/metrics has no llama.cpp counters"
            return None
        self.samples.append(sample)
        return sample

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
                return
            except asyncio.TimeoutError:
                await self.scrape()  # a missed sample only loses a gauge reading

    async def start(self) -> bool:
        """First scrape; when it fails the server has no usable /metrics and we stop asking."""
        if await self.scrape() is None:
            return False
        if self.interval_s and self.interval_s > 0:
            self._task = asyncio.create_task(self._loop())
        return True

    async def stop(self) -> dict[str, Any]:
        """result.json server_metrics: summarize_scrapes', or {"available": False, "reason"}."""
        if self._task is not None:
            # Let an in-flight scrape finish rather than cancel it: a cancelled GET may still
            # have been served, and its sample would be lost for no gain.
            self._stopping.set()
            await self._task
        if not self.samples:
            return {"available": False, "reason": self.reason or "no /metrics scrape succeeded"}
        first = self.samples[0]
        if await self.scrape() is None:  # the deltas need a scrape taken after the run
            return {"available": False, "reason": self.reason}
        return summarize_scrapes(first, self.samples[-1], self.samples, self.interval_s)
