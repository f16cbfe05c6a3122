"""The llama_server backend against a real llama.cpp `llama-server` (build b11434, from
`benchrun build-server`) serving the real SmolLM2-135M-Instruct model, on CPU.

The binary is BENCHRUN_LLAMA_SERVER, else `llama-server` on PATH, else the cached build. Without
one these tests SKIP (saying how to get it), except in CI (CI=true), where they FAIL: CI builds it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import psutil
import pytest
from support import output_dir_of

from benchrun.config import ModelConfig
from benchrun.provision.llamabuild import DEFAULT_BUILD, cached_llama_server
from benchrun.servers.flags import build_line, check_flags, help_text, parse_help
from benchrun.servers.llama_server import llama_server_flags

pytestmark = pytest.mark.slow


def _qwen_preset_on_smollm2(binary: str, model: Path) -> list[str]:
    """The seed study's qwen3coder preset (--jinja --cont-batching, -c, -np 3, -fa auto,
    --metrics, -ngl) with the real small model, on CPU."""
    return ["model=qwen3coder", f"model.path={model}", f"paths.llama_server={binary}",
            "model.ctx_size=4096", "model.n_gpu_layers=0", "model.threads=1"]


def _jobs(cwd: Path, stdout: str) -> dict[str, dict]:
    out = cwd / output_dir_of(stdout)
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))}


@pytest.mark.timeout(900)
def test_a_sweep_runs_on_one_reused_real_server_with_the_qwen_presets_flags(cli, llama_server_bin, smollm2_path):
    proc, cwd = cli("-m", *_qwen_preset_on_smollm2(llama_server_bin, smollm2_path), "concurrency=1,2",
                    "workload.requests=4", "workload.output_tokens=48", "workload.input_tokens=64",
                    "report=false", timeout=600)  # a ceiling, for a loaded box
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = _jobs(cwd, proc.stdout)
    assert list(jobs) == ["0_qwen3coder_c1", "1_qwen3coder_c2"]
    first, second = jobs.values()
    for res in (first, second):
        assert res["status"] == "ok", res["error"]
        m = res["metrics"]
        assert m["requests_ok"] == 4 and m["requests_failed"] == 0
        assert m["output_tokens"] == 4 * 48 and m["token_count_mismatches"] == 0  # exact length, server's usage
    cmd = first["server"]["command"]
    assert cmd[0] == llama_server_bin and cmd[cmd.index("--model") + 1] == str(smollm2_path)
    flat = " ".join(cmd)
    for flag in ("--ctx-size 4096", "--n-gpu-layers 0", "--parallel 3", "--flash-attn auto", "--metrics",
                 "--threads 1", "--jinja", "--cont-batching"):
        assert flag in flat, flag
    # One server for both jobs of the preset, stopped when the sweep ended.
    assert (first["server"]["reused"], second["server"]["reused"]) == (False, True)
    assert first["server"]["pid"] == second["server"]["pid"]
    assert not psutil.pid_exists(first["server"]["pid"]) or \
        psutil.Process(first["server"]["pid"]).status() == psutil.STATUS_ZOMBIE
    # The real build: /props says b11434-unknown (no git in an sdist), so benchrun records the
    # binary's --version line, which names the build too.
    assert re.search(rf"(\bb|build ){DEFAULT_BUILD}\b", first["server"]["build_info"]), first["server"]["build_info"]
    # llama.cpp's own timings beside the client's: the same decode rate within a third (the
    # client also counts the stream's delivery; a wrong unit or token count is off by far more).
    for res in (first, second):
        st = res["server_timings"]
        assert st["predicted_per_second"]["n"] == 4 and st["predicted_n"]["mean"] == 48
        assert 0.67 < st["client_server_decode_ratio"] < 1.5, st["client_server_decode_ratio"]
    assert first["model"]["sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def test_a_flag_the_real_binary_rejects_fails_the_job_with_its_own_error(cli, llama_server_bin, smollm2_path):
    proc, cwd = cli(*_qwen_preset_on_smollm2(llama_server_bin, smollm2_path),
                    "model.extra_args=[--jinja,--no-such-flag]", "workload.requests=1", "report=false",
                    timeout=120)
    assert proc.returncode == 0, proc.stderr  # a failed job is data
    res = next(iter(_jobs(cwd, proc.stdout).values()))
    assert res["status"] == "failed"
    assert "during startup" in res["error"] and "invalid argument: --no-such-flag" in res["error"], res["error"]


def test_every_flag_benchrun_emits_is_in_the_real_binarys_help(llama_server_bin, tmp_path):
    text = help_text(llama_server_bin)
    known = parse_help(text)
    assert len(known) > 100 and known["--ctx-size"] and not known["--metrics"]
    assert known["--flash-attn"] is True  # b11434: -fa takes on|off|auto
    full = ModelConfig(name="p", backend="llama_server", kv_unified=True, threads=2, cache_type_k="q8_0",
                       cache_type_v="q8_0", metrics_endpoint=True)
    assert check_flags(llama_server_bin, llama_server_flags(full, tmp_path / "m.gguf", 8080)) is None
    assert build_line(text) in ("unknown build", f"build {DEFAULT_BUILD}")


def test_build_server_is_a_no_op_when_the_build_is_cached(cli, llama_server_bin):
    cached = cached_llama_server()
    if cached is None:
        pytest.skip("the real llama-server is not in benchrun's cache: run `uv run benchrun build-server`")
    before = cached.stat().st_mtime_ns
    proc, _ = cli("build-server", timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == str(cached), proc.stderr
    assert proc.stderr == "" and cached.stat().st_mtime_ns == before  # nothing rebuilt, nothing said
    info = json.loads((cached.parent / "build.json").read_text())
    assert info["build"] == DEFAULT_BUILD and "-DLLAMA_CURL=OFF" in info["cmake"]


# A chat template that renders an assistant's reasoning_content inside <think>...</think>, as
# thinking models' templates do: llama.cpp's template analysis then parses <think> blocks of the
# output into reasoning_content. The grammar makes SmolLM2 (not a thinking model) write one.
THINKING_TEMPLATE = """{%- for message in messages -%}
<|im_start|>{{ message.role }}
{% if message.role == 'assistant' and message.reasoning_content -%}
<think>
{{ message.reasoning_content }}
</think>
{% endif -%}
{{ message.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}"""
THINK_GRAMMAR = 'root ::= "<think>\\n" [a-z]+ (" " [a-z]+){6,10} "\\n</think>\\n\\n" [A-Z] [a-z]+ (" " [a-z]+){4,8} "."'


@pytest.mark.timeout(900)
def test_ttfa_follows_the_reasoning_llama_cpp_itself_parsed(cli, llama_server_bin, smollm2_path, tmp_path):
    template = tmp_path / "thinking.jinja"
    template.write_text(THINKING_TEMPLATE)
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q}], "max_tokens": 96}) + "\n"
                             for q in ("Think, then say what a list is.", "Think, then name a colour.")))
    proc, cwd = cli("model=smollm2", "model.backend=llama_server", f"paths.llama_server={llama_server_bin}",
                    f"model.extra_args=[--jinja,--chat-template-file,{template},--reasoning-format,deepseek]",
                    "workload=replay", f"workload.path={trace}", "load.warmup_requests=0", "report=false",
                    f"+workload.extra_body.grammar='{THINK_GRAMMAR}'", timeout=600)  # a ceiling, for a loaded box
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = next((cwd / output_dir_of(proc.stdout)).glob("0_*"))
    res = json.loads((job / "result.json").read_text())
    assert res["status"] == "ok", res["error"]
    records = [json.loads(line) for line in (job / "requests.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for r in records:
        # The server split the stream: reasoning deltas first, then the answer, no tags left.
        assert len(r["reasoning"].split()) >= 7 and "<think>" not in r["text"] + r["reasoning"], r
        assert r["text"].strip()[0].isupper() and r["text"].strip().endswith("."), r["text"]
        kinds = r["event_kinds"]  # t = reasoning event, c = content event (records.py)
        assert "t" in kinds and "c" in kinds and kinds.index("t") < kinds.index("c") and "t" not in kinds[kinds.index("c"):], kinds
    # TTFT is the first token of either kind, TTFA the first answer token: later, by the reasoning.
    m = res["metrics"]
    assert m["ttfa_ms"]["n"] == m["ttft_ms"]["n"] == 2
    assert m["ttfa_ms"]["min"] > m["ttft_ms"]["min"] and m["ttfa_ms"]["max"] > m["ttft_ms"]["max"]
