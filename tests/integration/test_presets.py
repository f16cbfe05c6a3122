"""`benchrun presets` end to end: every preset, file present/missing, estimate, command line."""
from __future__ import annotations

import json
import shutil
import stat

from benchrun.config import ModelConfig
from benchrun.preflight import fit
from benchrun.provision.tinymodel import ensure_tiny_model


def test_presets_lists_every_preset(cli, tmp_path):
    # qwen3coder's file is "present" (a copy of the tiny GGUF under the name it expects);
    # qwen35's is missing; a fake llama-server binary is configured.
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ensure_tiny_model("tiny"), models / "Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf")
    binary = tmp_path / "my-llama-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    proc, _ = cli("presets", "--json", f"paths.models_dir={models}", f"paths.llama_server={binary}")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    by = {p["name"]: p for p in out["presets"]}
    assert set(by) == {"external", "gemma3_270m", "qwen35", "qwen3coder", "smollm2", "smollm2_1slot", "tiny",
                       "tiny_wide"}
    assert out["hardware"]["name"] == "auto" and out["hardware"]["memory_mib"] > 0

    tiny = by["tiny"]
    est = fit.estimate(ModelConfig(name="tiny", tiny="tiny", parallel=4, ctx_size=16384), ensure_tiny_model("tiny"))
    assert (tiny["backend"], tiny["file_status"], tiny["estimate_mib"], tiny["fits"]) == \
        ("embedded", "built-in", est.total_mib, True)
    assert "benchrun.servers.embedded_child" in tiny["command"] and '"ctx_size": 16384' in tiny["command"]

    coder = by["qwen3coder"]
    assert coder["file_status"] == "present" and coder["problems"] == []
    # the tiny file at ctx 40960 split in 3 slots: 3 x 13653 = 40959 cells x 4 layers x 512 B x 2 (K, V)
    assert coder["estimate_mib"] == -(-(est.file_bytes + 40959 * 4 * 512 * 2) // (1 << 20))
    assert coder["command"].startswith(f"{binary} --model {models}/Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf")
    assert "--ctx-size 40960 --n-gpu-layers -1 --parallel 3" in coder["command"]
    assert "--port '<free port>'" in coder["command"] and coder["command"].endswith("--jinja --cont-batching")

    q35 = by["qwen35"]
    assert q35["file_status"] == "missing" and q35["estimate_mib"] is None
    assert "hf download unsloth/Qwen3.5-35B-A3B-GGUF" in q35["problems"][0]
    assert f"--model {models}/Qwen3.5-35B-A3B-UD-Q3_K_XL.gguf" in q35["command"]
    assert by["external"]["file_status"] == "external"

    # Without the binary as well: both missing prerequisites are named, not only the first.
    proc, _ = cli("presets", "qwen35", "--json", f"paths.models_dir={models}",
                  f"paths.llama_server={tmp_path / 'no-such-llama-server'}")
    problems = json.loads(proc.stdout)["presets"][0]["problems"]
    assert len(problems) == 2 and problems[0].startswith("model file not found"), problems
    assert problems[1].startswith("llama-server binary not found: ") and "no-such-llama-server" in problems[1]


def test_presets_text_and_bad_input(cli):
    proc, _ = cli("presets", "tiny", "hardware.memory_mib=10", "model.port=8123")
    assert proc.returncode == 0, proc.stderr
    est = fit.estimate(ModelConfig(name="tiny", tiny="tiny", parallel=4, ctx_size=16384), ensure_tiny_model("tiny"))
    assert f"tiny  [embedded]  estimate ~{est.total_mib} MiB, DOES NOT FIT 10 MiB RAM" in proc.stdout
    assert '"port": 8123' in proc.stdout and "qwen35" not in proc.stdout
    bad, _ = cli("presets", "nope")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == ("benchrun presets: unknown preset 'nope'; "
                                  "presets: external, gemma3_270m, qwen35, qwen3coder, smollm2, smollm2_1slot, tiny, tiny_wide")
    typo, _ = cli("presets", "tiny", "model.ctx_sise=8")  # Hydra's error, as `benchrun` words it
    assert typo.returncode == 2 and len(typo.stderr.strip().splitlines()) == 1, typo.stderr
    assert typo.stderr.startswith("benchrun presets: unknown config key 'model.ctx_sise'; keys at 'model': ")
    assert "ctx_size" in typo.stderr
