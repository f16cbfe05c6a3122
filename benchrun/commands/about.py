"""`benchrun --help` and `--version`: benchrun's own pages (Hydra's generic help stays
available as `benchrun --hydra-help`). The config groups and their options are read from conf/,
so the page lists what is really there."""
from __future__ import annotations

from importlib import metadata

from benchrun.hydra_setup import conf_dir

USAGE = """benchrun: declarative benchmarks of local LLM inference servers (llama.cpp first).

Usage:
  benchrun [overrides]              one job          benchrun model=tiny concurrency=2
  benchrun -m [overrides]           a sweep          benchrun -m model=tiny,tiny_wide concurrency=1,2,3
  benchrun -m experiment=NAME       an experiment file's own sweep (experiments/ or conf/experiment/)
  benchrun -m ... resume=DIR        finish an interrupted sweep in DIR (ok jobs are kept)
  benchrun report DIR               (re)write report.md/html, charts and summary of a run dir
  benchrun diff A B [--fail-on ...] compare two run dirs, judged against run-to-run noise
  benchrun presets [NAME] [--json]  every model preset: backend, file, memory estimate, command
  benchrun serve model=NAME         start one preset's server and keep it up (Ctrl-C stops it)
  benchrun build-server             build llama.cpp's llama-server into the cache (once)
  benchrun calibrate DIR...         measure this machine's run-to-run noise from identical runs
  benchrun SUBCOMMAND --help        that subcommand's options
"""

COMMON = """Common overrides:
  concurrency=N  repeats=N  order=interleaved|random|grouped  report=false
  workload.requests=N  workload.input_tokens=N  workload.output_tokens=N
  model.ctx_size=N  model.parallel=N  model.threads=N  model.n_gpu_layers=N  model.path=FILE
  model.backend=embedded|llama_server|external|command  model.url=URL (external)
  load.rate=R (open loop, requests/s)  load.duration_s=S  slo.ttft_ms=MS  context_check=false

Results go to outputs/<run id>/ under the current directory: one dir per job (result.json,
requests.jsonl, server.log), summary.csv, report.md. Exit codes: 0 done (failed jobs are data),
2 bad config or input, 130 interrupted. Docs: README.md and docs/ in the repository."""


def groups() -> dict[str, list[str]]:
    """Config group -> its options, from conf/ (schemas and local settings left out)."""
    out = {}
    for d in sorted(p for p in conf_dir().iterdir() if p.is_dir() and p.name not in ("hydra", "local")):
        names = sorted(f.stem for f in d.glob("*.yaml") if not f.stem.startswith("base_"))
        if names:
            out[d.name] = names
    return out


def help_text() -> str:
    lines = [USAGE, "Config groups (pick one with GROUP=NAME; sweep with -m GROUP=A,B):"]
    lines += [f"  {g:<10} {', '.join(names)}" for g, names in groups().items()]
    return "\n".join(lines) + "\n\n" + COMMON


def version_text() -> str:
    from benchrun.provision.llamabuild import cached_llama_server
    from benchrun.servers.embedded import wheel_version

    server = cached_llama_server()
    return (f"benchrun {metadata.version('benchrun')}\n"
            f"embedded llama.cpp: {wheel_version() or 'xllamacpp not installed'}\n"
            f"llama-server in the cache: {server.parent.name if server else 'none (benchrun build-server)'}")
