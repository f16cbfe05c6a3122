"""Pulling code and JSON out of a chat reply."""
from __future__ import annotations

import json
import re
from typing import Any

# A fenced block; the closing fence may be missing when the reply was cut at max_tokens. It
# closes only at the start of a line (as in Markdown), so backticks inside the code are code.
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.S | re.M)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def extract_code(text: str, lang: str = "python") -> str:
    """The first block tagged `lang` (py counts as python), else the first untagged block, else
    the whole reply (a model may answer with bare code)."""
    names = {lang, "py", "python3"} if lang == "python" else {lang}
    blocks = fenced_blocks(text)
    for want in (names, {""}):
        for tag, body in blocks:
            if tag in want:
                return body
    return text


def extract_json(text: str) -> Any:
    """The first ```json block, else the whole reply, else its first {...} or [...] span.
    Raises ValueError when none of them is JSON."""
    cands = [body for tag, body in fenced_blocks(text) if tag in ("json", "")] + [text]
    m = re.search(r"[\[{].*[\]}]", text, re.S)
    if m:
        cands.append(m.group(0))
    for c in cands:
        try:
            return json.loads(c)
        except ValueError:
            continue
    raise ValueError("no JSON value found in the reply")
