"""Cross-checked against llama.cpp's own benchmark: benchrun's depth workload on a real
llama-server (SmolLM2-135M-Instruct Q4_1, 1 thread) beside `llama-bench` of the same build on the
same model and thread count, at depth 0 and 1024.

What is compared with what (docs/measurement.md, "Cross-checked against llama-bench"):
- tg: benchrun's decode_tok_s (client: 1000 / TPOT) and the server's timings.predicted_per_second
  against llama-bench `-n 32 -d D` (32 tokens generated after D tokens of context);
- pp: benchrun's prefill_tok_s (client: prompt tokens / TTFT) and the server's
  timings.prompt_per_second against llama-bench `-p P -d 0` with P = the exact prompt benchrun
  sent at that depth (workload.prompt_tokens: D + the templated question). benchrun's depth
  requests prefill their whole context from an empty cache, so "pp at depth D" is the mean speed
  over P tokens, which is llama-bench's pp<P>, not its pp512 @ d<D> (512 more tokens after D).
Each figure is a median over the job's requests (benchrun) or over llama-bench's repetitions.
benchrun's client figures must agree with the server's own timings of the same requests within
5% (the sharp check: they time the same decode steps; seen within 1.6%), and with llama-bench
within 30%: two programs run a minute apart on a shared VM, whose host has slowed either of them
by a third for tens of seconds (CI saw server tg at d1024 of 40-46 tok/s against llama-bench's
58 three rounds running; a standalone run saw llama-bench at 44 against the server's 57), while
the errors this check is for -- a unit, a wrong interval, a token count -- are 2x and more.

Flash attention is set off on both sides. Left at `auto`, llama-server turns it on for this
CPU model and llama-bench need not: on one 2-core VM that alone made tg 1.4x faster at depth 0
and 0.75x at depth 2048 (CI saw benchrun 20-34% "off" at d0 from it).

A busy machine slows whichever run it meets: the runs alternate (benchrun, llama-bench, and once
more when a figure disagrees), and each benchrun figure is held against the llama-bench run just
before or just after it, whichever is closer. A real disagreement -- a unit, a token count or a
rate off by a third -- fails every pairing.

llama-bench is the one beside the llama-server under test, else the cached `benchrun
build-server --bench` build, else `llama-bench` on PATH. Without one the test SKIPs (saying how to
get it), except in CI (CI=true), where it FAILs: CI builds it.
"""
from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import pytest
from support import output_dir_of

from benchrun.provision.llamabuild import BENCH, cached_llama_bench

# alone: its two tools' runs, taken a minute apart, would each meet another test's load.
pytestmark = [pytest.mark.slow, pytest.mark.alone]

DEPTHS = (0, 1024)  # 1024, not more: a round that costs a minute leaves room for three
THREADS = 1
TG_TOKENS = 32
REQUESTS = 3
REPS = {"pp": 2, "tg": 5}  # tg reps are cheap: llama-bench prefills the depth once
FLASH_ATTN = "off"
TOLERANCE = {"llama-bench": 0.30, "server": 0.05}
ROUNDS = 3  # benchrun + llama-bench, three times at most: this VM's host slows one side by a
# third for tens of seconds at a time (CI saw a round with tg d2048 at 46.8 then 68.3 tok/s)
BUDGET_S = 360  # no further round is started after this (one round: ~1 min on 2 quiet cores)


@pytest.fixture(scope="module")
def llama_bench_bin(llama_server_bin) -> str:
    beside = Path(llama_server_bin).parent / BENCH
    found = (beside if beside.is_file() else None) or cached_llama_bench() or shutil.which(BENCH)
    if not found:
        why = "no llama-bench: run `uv run benchrun build-server --bench`"
        pytest.skip(why)  # under CI the skip is a failure (conftest.py)
    return str(found)


def run_benchrun(cli, server: str) -> dict[int, dict]:
    """One depth sweep; per depth the figures benchrun reports (medians over the requests)."""
    proc, cwd = cli("-m", "model=smollm2", "model.backend=llama_server", f"paths.llama_server={server}",
                    "workload=depth", f"workload.depth={','.join(map(str, DEPTHS))}",
                    f"workload.requests={REQUESTS}", f"workload.output_tokens={TG_TOKENS}",
                    f"model.threads={THREADS}", f"model.flash_attn={FLASH_ATTN}", "telemetry.enabled=false", "report=false", timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = {}
    for p in sorted((cwd / output_dir_of(proc.stdout)).glob("*/result.json")):
        res = json.loads(p.read_text())
        assert res["status"] == "ok", res["error"]
        m, st = res["metrics"], res["server_timings"]
        assert m["requests_ok"] == REQUESTS and m["cache_hit_share"] == 0 and st["cache_n"]["max"] == 0
        # Exactly depth + the templated question per prompt, in the server's own count.
        assert res["server"]["backend"] == "llama_server" and res["workload"]["prompt_tokens_method"] == "tokenize"
        assert m["input_tokens"] == REQUESTS * res["workload"]["prompt_tokens"]
        out[res["workload"]["depth"]] = {
            "prompt_tokens": res["workload"]["prompt_tokens"],
            "pp": m["prefill_tok_s"]["p50"], "tg": m["decode_tok_s"]["p50"],
            "server_pp": st["prompt_per_second"]["p50"], "server_tg": st["predicted_per_second"]["p50"]}
    assert sorted(out) == list(DEPTHS)
    return out


def _llama_bench(binary: str, model: Path, reps: int, *args: str) -> list[dict]:
    cmd = [binary, "-m", str(model), "-t", str(THREADS), "-fa", FLASH_ATTN, "-r", str(reps), "-o", "json", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)


def run_llama_bench(binary: str, model: Path, prompt_tokens: dict[int, int]) -> dict[int, dict]:
    """pp of each depth's exact prompt from an empty context, and tg after each depth."""
    sizes = ",".join(str(prompt_tokens[d]) for d in DEPTHS)
    pp = _llama_bench(binary, model, REPS["pp"], "-p", sizes, "-n", "0", "-d", "0")
    tg = _llama_bench(binary, model, REPS["tg"], "-p", "0", "-n", str(TG_TOKENS), "-d", ",".join(map(str, DEPTHS)))
    out: dict[int, dict] = {}
    for d in DEPTHS:
        [p] = [t for t in pp if t["n_prompt"] == prompt_tokens[d] and t["n_gen"] == 0]
        [g] = [t for t in tg if t["n_depth"] == d and t["n_gen"] == TG_TOKENS]
        assert p["n_threads"] == g["n_threads"] == THREADS and p["flash_attn"] == g["flash_attn"] == 0
        # The median: one repetition that a busy machine slowed does not move it.
        out[d] = {"pp": statistics.median(p["samples_ts"]), "tg": statistics.median(g["samples_ts"])}
    return out


def disagreements(br: list[dict], lb: list[dict]) -> tuple[list[str], list[str]]:
    """Each benchrun figure against the llama-bench run just before or after it (the closer),
    and against the server's own timings of the same requests; a figure passes when one round
    agrees within its TOLERANCE. Returns (what failed, a line per figure and round)."""
    failed, lines = [], []
    for d in DEPTHS:
        for kind in ("pp", "tg"):
            best_lb = best_server = float("inf")
            for i, run in enumerate(br):
                mine = run[d][kind]
                near = [lb[j][d][kind] for j in (i - 1, i) if 0 <= j < len(lb)]
                off_lb = min(abs(mine / x - 1) for x in near)
                off_server = abs(mine / run[d][f"server_{kind}"] - 1)
                best_lb, best_server = min(best_lb, off_lb), min(best_server, off_server)
                lines.append(f"{kind} d{d} round {i}: benchrun {mine:.1f}, server {run[d][f'server_{kind}']:.1f}, "
                             f"llama-bench {' / '.join(f'{x:.1f}' for x in near)} tok/s "
                             f"(off {off_lb:.1%} / {off_server:.1%})")
            if best_lb > TOLERANCE["llama-bench"]:
                failed.append(f"{kind} d{d}: benchrun vs llama-bench off {best_lb:.1%}")
            if best_server > TOLERANCE["server"]:
                failed.append(f"{kind} d{d}: benchrun vs the server's timings off {best_server:.1%}")
    return failed, lines


@pytest.mark.timeout(900)
def test_depth_pp_and_tg_agree_with_llama_bench(cli, llama_server_bin, llama_bench_bin, smollm2_path):
    t0 = time.monotonic()
    br = [run_benchrun(cli, llama_server_bin)]
    sizes = {d: br[0][d]["prompt_tokens"] for d in DEPTHS}
    assert sizes[0] < 64 and DEPTHS[1] < sizes[DEPTHS[1]] < DEPTHS[1] + 64  # the question, and depth + it
    lb = [run_llama_bench(llama_bench_bin, smollm2_path, sizes)]
    failed, lines = disagreements(br, lb)
    while failed and len(br) < ROUNDS and time.monotonic() - t0 < BUDGET_S:
        br.append(run_benchrun(cli, llama_server_bin))
        assert {d: br[-1][d]["prompt_tokens"] for d in DEPTHS} == sizes  # the same prompts' sizes
        lb.append(run_llama_bench(llama_bench_bin, smollm2_path, sizes))
        failed, lines = disagreements(br, lb)
    print("\n".join(lines))
    assert not failed, "; ".join(failed) + "\n" + "\n".join(lines)
    # And what depth does, on both: tg slower deep in the context.
    assert br[-1][DEPTHS[1]]["tg"] < br[-1][0]["tg"] and lb[-1][DEPTHS[1]]["tg"] < lb[-1][0]["tg"]
