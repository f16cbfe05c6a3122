"""`benchrun presets [NAME...] [overrides] [--json]`: every model preset with its backend, model
file (present or missing), estimated memory against this machine, and the exact server command
line it would run. Each preset is composed through Hydra's compose API exactly as a run would
compose it (overrides such as paths.models_dir=... apply)."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any, Optional

PORT_SHOWN = "<free port>"


def compose_presets(names: list[str], overrides: list[str]) -> tuple[list[Any], list[str]]:
    """([composed config per preset], all preset names). Unknown names raise ValueError."""
    from benchrun.hydra_setup import compose, group_options, hydra_conf, to_config

    with hydra_conf():
        known = group_options("model")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown preset {unknown[0]!r}; presets: {', '.join(known)}")
        return [to_config(compose([f"model={n}", *overrides])) for n in (names or known)], known


def command_line(m: Any, shown_port: Optional[int]) -> tuple[list[str], list[str]]:
    """(argv the preset would run, problems). Built by the same code a run uses; a missing
    model file or binary is listed (every one, not only the first), and the line is rendered
    anyway from the configured path and binary."""
    from benchrun.servers import ServerError
    from benchrun.servers.pool import resolve_model_path
    from benchrun.servers.registry import backend_for

    port = shown_port or 0  # 0 stands for "a free port is taken at launch"
    backend = backend_for(m.backend)
    if not backend.launches:
        return [], []
    problems = []
    try:
        path = resolve_model_path(m, provision=False)
    except ServerError as e:
        if m.package:  # fetched by the run itself: shown where it will be
            from benchrun.provision.packaged import cached_path

            path = cached_path(m.package)
        else:
            problems.append(str(e))
            path = Path(m.path).expanduser() if m.path else Path("<model.path>")
    cmd, more = backend.show_command(m, path, port)
    return cmd, problems + more


def _shown(cmd: list[str], port_given: bool) -> str:
    if port_given or not cmd:
        return shlex.join(cmd)
    out = []
    for i, a in enumerate(cmd):
        if i and cmd[i - 1] == "--port" and a == "0":
            a = PORT_SHOWN
        elif a.startswith("{") and '"port": 0' in a:
            a = a.replace('"port": 0', f'"port": "{PORT_SHOWN}"')
        out.append(a)
    return shlex.join(out)


def describe_preset(cfg: Any, hw: dict) -> dict:
    from benchrun.preflight import fit
    from benchrun.servers import ServerError
    from benchrun.servers.pool import resolve_model_path
    from benchrun.servers.registry import backend_for

    m = cfg.model
    d: dict = {"name": m.name, "backend": m.backend, "quantization": m.quantization,
               "ctx_size": m.ctx_size, "parallel": m.parallel, "n_gpu_layers": m.n_gpu_layers,
               "model_file": None, "file_status": None, "estimate_mib": None, "fits": None,
               "estimate": None, "command": None, "problems": []}
    if not backend_for(m.backend).launches:
        d.update(file_status="external",
                 command=f"(none: benchrun connects to {m.url or 'the running server at model.url=...'})")
        return d
    path = None
    try:
        path = resolve_model_path(m, provision=False)  # listing presets never downloads
        d["file_status"] = "built-in" if m.tiny else ("present" if path else "none needed")
    except ServerError as e:
        if m.package:  # not a problem: a run fetches it
            from benchrun.provision.packaged import cached_path, spec_of

            spec = spec_of(m.package)
            d["file_status"] = f"fetched on first use from {spec.requirements[0]}, about {spec.download_mb} MB"
            path_shown = cached_path(m.package)
            d["model_file"] = str(path_shown)
        else:
            d["file_status"] = "missing"
            d["problems"].append(str(e))
    if not d["model_file"]:
        d["model_file"] = str(path) if path else (str(Path(m.path).expanduser()) if m.path else None)
    if path is not None:
        try:
            facts = fit.read_gguf_facts(path)
            est = fit.estimate(m, path, facts)
            d["estimate_mib"], d["estimate"] = est.total_mib, est.breakdown()
            have, what, share = fit.budget(m, hw, facts.n_layer)
            if have is not None:
                d["fits"] = est.total_bytes * share / fit.MIB <= have
                d["budget"] = f"{have} MiB {what}"
        except ValueError as e:
            d["problems"].append(str(e))
    cmd, problems = command_line(m, m.port)
    d["command"] = _shown(cmd, bool(m.port))
    d["problems"] += [p for p in problems if p not in d["problems"]]
    return d


def render(presets: list[dict], hw: dict) -> str:
    gpu = f"{hw.get('gpu')} ({hw.get('gpu_memory_mib')} MiB)" if hw.get("gpu") else "no GPU"
    lines = [f"hardware {hw.get('name')}: {gpu}, {hw.get('memory_mib')} MiB RAM, CPU {hw.get('cpu')}", ""]
    for d in presets:
        est = "?" if d["estimate_mib"] is None else f"~{d['estimate_mib']} MiB"
        fits = {True: f"fits {d.get('budget')}", False: f"DOES NOT FIT {d.get('budget')}",
                None: "fit unknown"}[d["fits"]]
        lines.append(f"{d['name']}  [{d['backend']}]  estimate {est}, {fits}")
        if d["model_file"] or d["file_status"] == "missing":
            lines.append(f"  model file: {d['model_file']} ({d['file_status']})")
        if d["estimate"]:
            lines.append(f"  memory:     {d['estimate']}")
        lines.append(f"  command:    {d['command']}")
        for p in d["problems"]:
            lines.append(f"  problem:    {p}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print("usage: benchrun presets [NAME...] [key=value overrides] [--json]")
        return 0
    as_json = "--json" in argv
    args = [a for a in argv if a != "--json"]
    bad = [a for a in args if a.startswith("-")]
    if bad:
        print(f"benchrun presets: unknown option {bad[0]}", file=sys.stderr)
        return 2
    names = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    try:
        from benchrun.measure.hardware import describe_hardware
        cfgs, _ = compose_presets(names, overrides)
        hw = describe_hardware(cfgs[0].hardware) if cfgs else {}
        presets = [describe_preset(c, hw) for c in cfgs]
    except Exception as e:  # noqa: BLE001 -- bad overrides etc.: one line, no traceback
        from benchrun.hydra_setup import explain

        print(f"benchrun presets: {explain(e)}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps({"hardware": hw, "presets": presets}, indent=2))
    else:
        sys.stdout.write(render(presets, hw))
    return 0
