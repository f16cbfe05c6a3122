"""Independent single-turn requests of an exact input and exact output length.

Input length: the server's own tokenizer decides. With the tokenizer its backend offers
(servers/tokenizer.py: llama.cpp's /apply-template and /tokenize) the prompt is trimmed until
the templated prompt (BOS included) is exactly `input_tokens` long, which is what
`usage.prompt_tokens` then reports. A server without one gets an estimate, and result.json
says so."""
from __future__ import annotations

from typing import Optional

import numpy as np

from benchrun.config import WorkloadConfig
from benchrun.load.client import RequestSpec
from benchrun.load.engine import Conversation
from benchrun.servers.tokenizer import Tokenizer, TokenizerError
from benchrun.workloads.base import Workload, fixed

_WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
          "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu "
          "apple river stone cloud paper orbit pixel lemon tiger maple").split()
_MARK = "\x1fBENCHRUN_PROMPT\x1f"  # stands in for the user text when learning the template
_FIT_ROUNDS = 8
_EST_TOKENS_PER_WORD = 1.3  # fallback only: typical BPE on short English words
_EST_TEMPLATE_TOKENS = 10


class SyntheticWorkload(Workload):
    own_fields = ("requests", "input_tokens")

    def __init__(self, cfg: WorkloadConfig, concurrency: int):
        super().__init__(cfg, concurrency)
        self.tokenizer: Optional[Tokenizer] = None
        self.prompt_method = "estimate"
        self.prompt_note: Optional[str] = None
        self._cache: dict[tuple[int, int], str] = {}

    def _messages(self, content: str) -> list:
        messages = [{"role": "user", "content": content}]
        if self.cfg.system_prompt:
            messages.insert(0, {"role": "system", "content": self.cfg.system_prompt})
        return messages

    def prepare(self, tok: Optional[Tokenizer]) -> None:
        """Learn the chat template's frame around the user text; fall back to an estimate
        when the server offers no tokenizer, or its endpoints do not answer."""
        if tok is None:
            self.prompt_note = "the server's backend offers no tokenizer; input length is an estimate"
            return
        try:
            framed = tok.template(self._messages(_MARK))
            tok.tokenize("a", add_special=True)
        except (TokenizerError, KeyError, TypeError) as e:
            self.prompt_note = f"no server tokenizer ({e}); input length is an estimate"
            return
        if _MARK not in framed:
            self.prompt_note = "the chat template drops the user text; input length is an estimate"
            return
        self.tokenizer = tok
        self.prompt_method = "tokenize"

    def _filler(self, index: int, repeat: int, n_words: int) -> str:
        """Deterministic, distinct per request, so no two requests share a cacheable prefix."""
        rng = np.random.default_rng([self.cfg.seed, repeat + 1, index])
        return f"{index} {repeat} " + " ".join(rng.choice(_WORDS, size=max(1, n_words)))

    def _count(self, text: str) -> int:
        """Tokens of the whole templated prompt around `text`, BOS included. Through the real
        template each time: some templates trim or escape the text."""
        tok = self.tokenizer
        return len(tok.tokenize(tok.template(self._messages(text)), add_special=True))

    def target_tokens(self) -> int:
        """The templated prompt's exact length."""
        return int(self.cfg.input_tokens)

    def _fit(self, index: int, repeat: int) -> str:
        """The longest filler prefix whose templated prompt is exactly target_tokens() long."""
        tok, target, count = self.tokenizer, self.target_tokens(), self._count
        base = tok.tokenize(self._filler(index, repeat, target), add_special=False)
        m = max(1, target - count(""))
        best: tuple[int, str] = (1 << 30, "")
        for _ in range(_FIT_ROUNDS):
            if m > len(base):  # tokens merged more than expected: grow the filler
                base = tok.tokenize(self._filler(index, repeat, 2 * m), add_special=False)
            text = tok.detokenize(base[:max(1, m)])
            miss = target - count(text)
            if abs(miss) < best[0]:
                best = (abs(miss), text)
            if miss == 0 or m + miss < 1:
                break
            m += miss
        if best[0]:
            self.prompt_note = (f"a prompt of {target} tokens could not be hit exactly "
                                f"(off by {best[0]}; the chat template alone may be longer)")
        return best[1]

    def prompt(self, index: int, repeat: int) -> str:
        key = (index, repeat)
        if key not in self._cache:
            if self.tokenizer is not None:
                self._cache[key] = self._fit(index, repeat)
            else:
                words = round((self.target_tokens() - _EST_TEMPLATE_TOKENS) / _EST_TOKENS_PER_WORD)
                self._cache[key] = self._filler(index, repeat, words)
        return self._cache[key]

    def spec(self, index: int, repeat: int) -> RequestSpec:
        c = self.cfg
        body = {"temperature": c.temperature, "seed": c.seed + index, "ignore_eos": True,
                "cache_prompt": c.cache_prompt, **c.extra_body}
        return RequestSpec(messages=self._messages(self.prompt(index, repeat)),
                           max_tokens=c.output_tokens, body=body,
                           tags={"index": index}, expected_tokens=c.output_tokens,
                           reply_needed=False)  # single turn: nothing reads the reply

    def conversations(self, repeat: int) -> list[Conversation]:
        return [fixed([self.spec(i, repeat)]) for i in range(self.cfg.requests)]

    def planned_requests(self) -> int:
        return int(self.cfg.requests)

    def warmup(self) -> list[Conversation]:
        return [fixed([self.spec(0, -1)])]  # fit one prompt, not a whole repeat's

    def context_need(self, bytes_per_token: float = 3.0):
        from benchrun.preflight.context import ContextNeed

        # Prompts are fitted to exactly input_tokens with the server's tokenizer; replies are
        # exactly output_tokens (ignore_eos).
        n = int(self.cfg.input_tokens) + int(self.cfg.output_tokens)
        return ContextNeed(n, f"{self.cfg.input_tokens} prompt + {self.cfg.output_tokens} output tokens",
                           False, concurrent_tokens=n * self.concurrency)

    def describe(self) -> dict:
        d = super().describe()
        d["prompt_tokens_method"] = self.prompt_method  # tokenize (exact) | estimate
        if self.prompt_note:
            d["prompt_tokens_note"] = self.prompt_note
        return d
