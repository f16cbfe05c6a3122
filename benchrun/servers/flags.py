"""Check the flags benchrun passes to a llama-server binary against that binary's own `--help`.

llama.cpp renames, removes and re-types flags between builds (`-fa` went from a switch to
`-fa on|off|auto`; a bare `-fa` then swallows the next argument). A binary that does not know a
flag benchrun emits, or takes no value where benchrun passes one (or the reverse), would fail
with an unrelated message or, worse, run misconfigured. `check_flags` refuses it first, with one
line naming the flag, the preset field it comes from and the binary.

`--help` is read once per binary (keyed by its real path, size and mtime) and cached in
`<cache>/llama-server-help/`. Only the flags benchrun itself builds from preset fields are
checked; `model.extra_args` go to the binary as they are, and it judges them itself (its own
error is quoted in the failed job). A binary whose `--help` lists no `--port` option is not a
llama-server we can read: the check is skipped and says so (returns a note).
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from benchrun.provision.tinymodel import default_cache_dir
from benchrun.servers.base import ServerError

# The build benchrun's flags were last checked against (benchrun build-server builds it).
CHECKED_BUILD = 11434


@dataclass(frozen=True)
class Flag:
    """One option benchrun emits: `value` None for a switch; `source` the preset field."""

    name: str
    value: Optional[str]
    source: str


def _cache_file(binary: Path) -> Path:
    real = binary.resolve()
    st = real.stat()
    key = hashlib.sha256(f"{real}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return default_cache_dir().parent / "llama-server-help" / f"{key}.txt"


def help_text(binary: str, timeout_s: float = 60.0) -> str:
    """The binary's `--help` output (stdout and stderr), cached per binary file."""
    path = Path(binary)
    cache = _cache_file(path)
    if cache.is_file():
        return cache.read_text()
    try:
        proc = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"benchrun: `{binary} --help` could not run: {e}"
    text = proc.stdout + proc.stderr
    if proc.returncode == 0 and "--port" in text:  # only a real answer is worth keeping
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text)
            tmp.replace(cache)
        except OSError:
            pass  # a read-only cache only costs another --help next time
    return text


# An option line: "-c,    --ctx-size N    help..." or "-fa, --flash-attn [on|off|auto]": names
# separated by commas, then an optional value hint, then two or more spaces (or the line ends).
_OPTION_LINE = re.compile(r"^(-{1,2}[A-Za-z0-9][^\s,]*(?:,\s*-{1,2}[A-Za-z0-9][^\s,]*)*)(?: ([^\s].*?))?(?:\s{2,}|$)")


def parse_help(text: str) -> dict[str, bool]:
    """{flag: takes a value} for every option the help text lists."""
    flags: dict[str, bool] = {}
    for line in text.splitlines():
        m = _OPTION_LINE.match(line)
        if not m:
            continue
        takes_value = bool(m.group(2))
        for name in re.split(r",\s*", m.group(1)):
            flags[name] = takes_value
    return flags


def build_line(text: str) -> str:
    """'build 11434' (or what the help says about its version), for messages."""
    m = re.search(r"build[: ]+(\d+)|version[: ]+(\d+)", text)
    return f"build {m.group(1) or m.group(2)}" if m else "unknown build"


def check_flags(binary: str, flags: list[Flag]) -> Optional[str]:
    """Raise ServerError (one line) when the binary does not take `flags` as benchrun passes
    them; return a note when its --help cannot be read (nothing checked), else None."""
    text = help_text(binary)
    known = parse_help(text)
    if "--port" not in known:
        # Not quoted: a stand-in's "--help" output may read like a launch error in server.log.
        return f"benchrun: `{binary} --help` lists no llama-server options; flags not checked"
    for f in flags:
        where = f"{binary} ({build_line(text)})"
        hint = (f"use a llama.cpp build that has it (benchrun's flags are checked against b{CHECKED_BUILD}: "
                f"`benchrun build-server`)")
        if f.name not in known:
            raise ServerError(f"llama-server {where} has no {f.name} option (benchrun passes it for "
                              f"{f.source}); {hint}")
        if known[f.name] and f.value is None:
            raise ServerError(f"llama-server {where} expects a value after {f.name}, benchrun passes it "
                              f"as a switch (for {f.source}); {hint}")
        if not known[f.name] and f.value is not None:
            raise ServerError(f"llama-server {where} takes {f.name} as a switch, benchrun passes "
                              f"`{f.name} {f.value}` (for {f.source}): the value would be read as the "
                              f"next argument; {hint}")
    return None
