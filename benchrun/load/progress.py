"""Live progress of a job, for the person waiting on it: on a terminal a tqdm bar (job i of N,
requests done/total, failures, tokens/s, elapsed), elsewhere -- a pipe, a file, a cluster
job's log -- a plain line at most every `every_s` seconds. Fed once per finished request
(never per chunk: nothing here is in the client's hot loop), and redrawn at most twice a
second. Tokens are the server's (usage), shown once known: a reply nothing reads during the
run is decoded after it, so a synthetic job shows requests and failures only."""
from __future__ import annotations

import sys
import time
from typing import IO, Optional

MODES = ("auto", "bar", "lines", "off")


class Progress:
    def __init__(self, name: str, total: Optional[int], index: Optional[int] = None, of: Optional[int] = None,
                 mode: str = "auto", every_s: float = 10.0, stream: Optional[IO] = None):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "lines"
        self.mode, self.every_s, self.total = mode, every_s, total
        self.label = f"[{index}/{of}] {name}" if index is not None and of else f"[{name}]"
        self.done = self.failed = self.tokens = 0
        self.t0 = self._last = time.monotonic()
        self._bar = None
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.label, unit="req", file=self.stream, mininterval=0.5,
                             leave=False, dynamic_ncols=True)

    def request_done(self, ok: bool, tokens: Optional[int]) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        self.tokens += tokens or 0
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.update(1)
        elif self.mode == "lines" and time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            print(self.line(), file=self.stream, flush=True)

    def _postfix(self) -> str:
        dt = max(time.monotonic() - self.t0, 1e-9)
        # Replies decoded only after the run (nothing reads them during it) have no count yet.
        rate = f", {self.tokens / dt:.1f} tok/s" if self.tokens else ""
        return f"{self.failed} failed{rate}"

    def line(self) -> str:
        of = f"/{self.total}" if self.total else ""
        return (f"{self.label} {self.done}{of} requests, {self._postfix()}, "
                f"{time.monotonic() - self.t0:.0f} s")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
