"""Long agent sessions: `{{ source:FILE }}` in an agentic turn pastes the next slice of FILE (a
source corpus in benchrun/workloads/data, e.g. session_sources.txt), so that an agent's context
grows turn by turn until it holds `workload.depth` tokens of source (conf/workload/agentic_long.yaml).

Contract:
- An agent's `{{ source:... }}` references share `depth` evenly (the first ones get the
  remainder); depth 0 pastes nothing.
- Slices are cut in the server's own tokens when the backend offers a tokenizer (`prepare`), so
  a slice of n tokens re-tokenizes to n (give or take one at a seam, where detokenized text may
  merge differently); without one a token is `bytes_per_token` bytes, and the need is an estimate.
- Every running copy of an agent starts reading at its own offset in the corpus (wrapping at its
  end), so no two agents share a source prefix: a prompt-cache hit is an agent's own history.
- A depth larger than the corpus is refused (one line): the slices would repeat themselves.
- All slices are cut in `prepare`, before warm-up: no tokenizer call falls in the measured window."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional

from benchrun.servers.tokenizer import Tokenizer

SOURCE = re.compile(r"\{\{\s*source:\s*([\w./-]+)\s*\}\}")


def refs(template: str) -> list[str]:
    """The corpus files a template's `{{ source:FILE }}` references name, in order."""
    return SOURCE.findall(template)


class Sources:
    """The slices each running agent pastes, keyed by (instance index, reference ordinal)."""

    def __init__(self, depth: int, data_dir: Path):
        self.depth = int(depth)
        self.data_dir = data_dir
        self.tokenizer: Optional[Tokenizer] = None
        self.bytes_per_token = 3.0
        self._streams: dict[str, list] = {}  # file -> token ids (tokenizer) or bytes
        self._cut: dict[int, list[str]] = {}  # instance index -> its slices

    def check(self, files: list[str]) -> None:
        if self.depth < 0:
            raise ValueError(f"workload.depth must be >= 0, got {self.depth}")
        for f in files:
            if not (self.data_dir / f).is_file():
                raise ValueError(f"workload: no source corpus {f!r} in {self.data_dir}")

    @staticmethod
    def budgets(n_refs: int, depth: int) -> list[int]:
        """Tokens each of an agent's n_refs references pastes: depth shared evenly."""
        if n_refs == 0:
            return []
        q, r = divmod(depth, n_refs)
        return [q + (1 if i < r else 0) for i in range(n_refs)]

    def _stream(self, f: str) -> list:
        if f not in self._streams:
            text = (self.data_dir / f).read_text()
            self._streams[f] = (list(self.tokenizer.tokenize(text, False)) if self.tokenizer is not None
                                else list(text.encode("utf-8")))
        return self._streams[f]

    def _units(self, tokens: int) -> int:
        """Stream units (tokens, or bytes without a tokenizer) for this many tokens."""
        return tokens if self.tokenizer is not None else math.ceil(tokens * self.bytes_per_token)

    def prepare(self, tokenizer: Optional[Tokenizer], agents: list[tuple[int, int, list[str]]]) -> None:
        """Cut every slice now: agents = (instance index, instances in all, the files its refs name)."""
        self.tokenizer, self._streams, self._cut = tokenizer, {}, {}
        for idx, n_inst, files in agents:
            self.slices(idx, n_inst, files)

    def slices(self, idx: int, n_inst: int, files: list[str]) -> list[str]:
        """The texts instance idx (of n_inst) pastes for its references, in order (cut once)."""
        if idx in self._cut:
            return self._cut[idx]
        out: list[str] = []
        cursor: dict[str, int] = {}
        for f, n in zip(files, self.budgets(len(files), self.depth)):
            stream = self._stream(f)
            units = self._units(n)
            first = idx * len(stream) // max(1, n_inst)
            start = cursor.setdefault(f, first)
            if start + units - first > len(stream):
                raise ValueError(f"workload.depth {self.depth} asks more of source corpus {f!r} than it holds "
                                 f"({len(stream)} {'tokens' if self.tokenizer else 'bytes'}): the session would "
                                 f"repeat itself; set a lower workload.depth")
            part = [stream[(start + i) % len(stream)] for i in range(units)]
            cursor[f] = start + units
            if self.tokenizer is not None:
                out.append(self.tokenizer.detokenize(part) if part else "")
            else:
                out.append(bytes(part).decode("utf-8", errors="ignore"))  # a cut inside a character drops it
        self._cut[idx] = out
        return out


def fill(text: str, slices: list[str], start: int) -> tuple[str, int]:
    """Replace text's `{{ source:... }}` references with slices[start:], in order; returns the
    text and the next ordinal. Runs after the other placeholders are filled, so a slice that
    quotes template syntax (the corpus is benchrun's own source) is pasted as written."""
    k = start

    def sub(_m: re.Match) -> str:
        nonlocal k
        s = slices[k] if k < len(slices) else ""
        k += 1
        return s

    return SOURCE.sub(sub, text), k
