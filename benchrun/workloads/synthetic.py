"""Independent single-turn requests of a fixed input and exact output length."""
from __future__ import annotations

import numpy as np

from ..client import RequestSpec
from ..engine import Conversation
from .base import Workload

_WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
          "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu "
          "apple river stone cloud paper orbit pixel lemon tiger maple").split()


class SyntheticWorkload(Workload):
    def prompt(self, index: int, repeat: int) -> str:
        """Deterministic, distinct per request, so no two requests share a cacheable prefix."""
        rng = np.random.default_rng([self.cfg.seed, repeat + 1, index])
        words = rng.choice(_WORDS, size=max(1, self.cfg.input_tokens // 2))
        return f"{index} {repeat} " + " ".join(words)

    def spec(self, index: int, repeat: int) -> RequestSpec:
        c = self.cfg
        messages = [{"role": "user", "content": self.prompt(index, repeat)}]
        if c.system_prompt:
            messages.insert(0, {"role": "system", "content": c.system_prompt})
        body = {"temperature": c.temperature, "seed": c.seed + index, "ignore_eos": True,
                "cache_prompt": c.cache_prompt, **dict(c.extra_body)}
        return RequestSpec(messages=messages, max_tokens=c.output_tokens, body=body,
                           tags={"index": index}, expected_tokens=c.output_tokens)

    def conversations(self, repeat: int) -> list[Conversation]:
        return [self._single(self.spec(i, repeat)) for i in range(self.cfg.requests)]

    @staticmethod
    def _single(spec: RequestSpec) -> Conversation:
        yield spec
