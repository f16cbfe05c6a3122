"""Speed at depth, as `llama-bench -d` measures it but for a whole preset under load: each
request is exactly `depth` tokens of context (counted with the server's own tokenizer, unique
per request so that no prompt-cache hit can flatter it) plus one short question, then exactly
`output_tokens` generated tokens (ignore_eos). Prefill (pp) and decode (tg) speed at that depth
come out as the usual prefill_tok_s and decode_tok_s, beside llama.cpp's own timings
(server_timings: prompt_per_second, predicted_per_second); result.json's workload records the
depth. `workload.depth` is sweepable: benchrun -m workload=depth workload.depth=0,4096,16384.

The synthetic workload's exact-length prompts, with the context ahead of the question: the
template and question around the context are counted once, and the context fitted to fill the
rest of `depth + that frame` exactly."""
from __future__ import annotations

from typing import Optional

from benchrun.servers.tokenizer import Tokenizer
from benchrun.workloads.synthetic import SyntheticWorkload

QUESTION = "Which word appears most often in the text above? Answer in one sentence."
_EST_FRAME_TOKENS = 32  # without a tokenizer: template + question, an estimate


class DepthWorkload(SyntheticWorkload):
    own_fields = ("requests", "depth")

    _frame: Optional[int] = None

    def _messages(self, content: str) -> list:
        return super()._messages(f"{content}\n\n{QUESTION}" if content else QUESTION)

    def prepare(self, tok: Optional[Tokenizer]) -> None:
        super().prepare(tok)
        if self.tokenizer is not None:
            self._frame = self._count("")  # the templated question alone

    def prompt(self, index: int, repeat: int) -> str:
        return "" if self.cfg.depth == 0 else super().prompt(index, repeat)  # depth 0: the question alone

    def target_tokens(self) -> int:
        return int(self.cfg.depth) + (_EST_FRAME_TOKENS if self._frame is None else self._frame)

    def context_need(self, bytes_per_token: float = 3.0):
        from benchrun.preflight.context import ContextNeed

        n = int(self.cfg.depth) + _EST_FRAME_TOKENS + int(self.cfg.output_tokens)
        return ContextNeed(n, f"depth {self.cfg.depth} + question (~{_EST_FRAME_TOKENS}) + "
                              f"{self.cfg.output_tokens} output tokens", False, concurrent_tokens=n * self.concurrency)

    def describe(self) -> dict:
        d = super().describe()
        d["depth"] = int(self.cfg.depth)
        if self._frame is not None:
            d["prompt_tokens"] = int(self.cfg.depth) + self._frame  # what each prompt is, exactly
        return d
