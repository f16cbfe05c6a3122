"""Backend `command`: any OpenAI-compatible server started from the user's own command line
(vLLM, SGLang, llamafile, a llama-server built elsewhere ...). `model.command` is the argv,
with {model} {host} {port} {ctx_size} {parallel} {threads} filled in per argument ({threads}: model.threads,
else benchrun's default for llama.cpp, servers.base.default_threads) (nothing else
in it is special, so JSON with braces is safe); `model.health_path` answers 200 once the server
is ready. benchrun starts it in its own process group and stops it like any other."""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any, Optional

from benchrun.servers.backend import Backend, Need
from benchrun.servers.base import default_threads

_FIELD = re.compile(r"\{(model|host|port|ctx_size|parallel|threads)\}")


class Command(Backend):
    name = "command"
    own_fields = ("command", "health_path")
    llama_cpp = False  # unless its /props names a llama.cpp build (then it is one)

    def validate(self, m: Any) -> None:
        super().validate(m)
        if not m.command:
            raise ValueError("model.command is required for backend=command: the server's argv, e.g. "
                             "[vllm,serve,{model},--port,{port}]")
        if not any("{port}" in str(a) for a in m.command):
            raise ValueError("model.command must contain {port}: benchrun picks the port and must tell the server")
        if not str(m.health_path).startswith("/"):
            raise ValueError(f"model.health_path must start with /, got {m.health_path!r}")

    def _uses(self, m: Any, field: str) -> bool:
        return any("{" + field + "}" in str(a) for a in m.command)

    def needs_model_file(self, m: Any) -> bool:
        return self._uses(m, "model")  # a server that fetches its own model needs no file

    def sets_context(self, m: Any) -> bool:
        return self._uses(m, "ctx_size")  # otherwise the server decides, and benchrun cannot know

    def command(self, m: Any, model_path: Optional[Path], port: int) -> list[str]:
        values = {"model": str(model_path), "host": m.host, "port": str(port), "ctx_size": str(m.ctx_size),
                  "parallel": str(m.parallel), "threads": str(m.threads or default_threads())}
        return [_FIELD.sub(lambda x: values[x.group(1)], str(a)) for a in m.command]

    def missing(self, m: Any) -> list[str]:
        exe = str(m.command[0]) if m.command else ""
        if exe and not shutil.which(exe) and not Path(exe).is_file():
            return [f"model.command[0] not found: {exe!r} (install the server, or give its full path)"]
        return []

    def health(self, m: Any) -> tuple[str, bool]:
        return m.health_path, True

    def prerequisite(self, model: dict, server: dict) -> Optional[Need]:
        cmd = shlex.join(str(a) for a in server.get("command") or [])
        return Need("the server is your own command {}: its software must be installed.", cmd)
