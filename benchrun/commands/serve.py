"""`benchrun serve model=X [overrides]`: start one preset in the foreground, print its URL, keep
it up until Ctrl-C (or SIGTERM), then stop it cleanly -- so a user can poke it by hand with the
exact settings a benchmark would use. The config is composed through Hydra's compose API, as a
run composes it."""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

USAGE = "usage: benchrun serve model=NAME [key=value overrides]   (Ctrl-C stops the server)"


def _say(msg: str) -> None:
    print(f"benchrun: {msg}", flush=True)


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    bad = [a for a in argv if "=" not in a]
    if bad:
        print(f"benchrun serve: expected key=value overrides, got {bad[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    from benchrun.config import validate
    from benchrun.hydra_setup import compose, explain, run_id, to_config
    from benchrun.measure.hardware import describe_hardware
    from benchrun.preflight import fit
    from benchrun.servers import ServerError, build_server
    from benchrun.servers.base import stop_process
    from benchrun.servers.pool import resolve_model_path
    from benchrun.servers.registry import backend_for

    try:
        cfg = to_config(compose(argv))
        validate(cfg)
        m = cfg.model
        if not backend_for(m.backend).launches:
            raise ValueError("model=external is a server that already runs; serve starts a preset")
        path = resolve_model_path(m)
        fit.preflight(cfg, path, describe_hardware(cfg.hardware))
    except Exception as e:  # noqa: BLE001 -- bad input: one line, no traceback
        print(f"benchrun serve: {explain(e)}", file=sys.stderr)
        return 2

    log_path = Path("outputs") / "serve" / f"{m.name}_{run_id()}" / "server.log"

    def on_term(*_):
        raise KeyboardInterrupt  # SIGTERM stops the server as cleanly as Ctrl-C

    old_term = signal.signal(signal.SIGTERM, on_term)
    # The server is started from this (main) thread: servers die with the thread that spawned
    # them (PR_SET_PDEATHSIG), and launch() stops a half-started server on Ctrl-C itself.
    server = None
    try:
        _say(f"starting {m.name} ({m.backend}); log: {log_path}")
        server = build_server(m, log_path)
        _say(f"serving {m.name} at {server.url} (pid {server.pid}); Ctrl-C to stop")
        _say(f"try: curl {server.url}/v1/chat/completions -H 'Content-Type: application/json' "
             "-d '{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":16}'")
        while server.alive():
            time.sleep(0.5)
        print(f"benchrun serve: server exited with code {server.process.returncode}; see {log_path}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if server is None:
            _say("interrupted during startup; stopped")
            return 130
    except ServerError as e:
        print(f"benchrun serve: {e}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            stop_process(server.process, m.stop_grace_s)  # no-op when it exited by itself
        signal.signal(signal.SIGTERM, old_term)
    _say(f"stopped {m.name}")  # only Ctrl-C / SIGTERM with a running server gets here
    return 0
