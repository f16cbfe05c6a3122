"""A server's own tokenizer and chat template, for exact prompt sizing (workloads/synthetic.py).

llama.cpp's server offers them as /apply-template, /tokenize and /detokenize; a backend hands
one out (Backend.tokenizer), and a workload probes it while preparing, before anything is
measured: endpoints that do not answer are a TokenizerError, and the workload estimates."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Protocol


class Tokenizer(Protocol):
    def template(self, messages: list) -> str: ...
    def tokenize(self, text: str, add_special: bool) -> list[int]: ...
    def detokenize(self, tokens: list[int]) -> str: ...


class TokenizerError(RuntimeError):
    pass


class LlamaCppTokenizer:
    """llama.cpp's /apply-template, /tokenize and /detokenize, over plain blocking HTTP
    (used while preparing, before anything is measured)."""

    def __init__(self, url: str, headers: dict | None = None, timeout_s: float = 30.0):
        self.url = url.rstrip("/")
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.timeout_s = timeout_s

    def _post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                out = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise TokenizerError(f"POST {path}: {e}") from None
        if not isinstance(out, dict):
            raise TokenizerError(f"POST {path}: unexpected answer")
        return out

    def template(self, messages: list) -> str:
        return self._post("/apply-template", {"messages": messages})["prompt"]

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        return self._post("/tokenize", {"content": text, "add_special": add_special})["tokens"]

    def detokenize(self, tokens: list[int]) -> str:
        return self._post("/detokenize", {"tokens": tokens})["content"]
