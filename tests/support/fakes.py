"""Text llama.cpp's server prints, faked for tests that must not need the real binary: its
--help, laid out exactly as common_arg::to_string() writes it (b11434), and its Prometheus
/metrics page with chosen counter values."""
from __future__ import annotations


def option(names: list[str], hint: str | None, text: str) -> str:
    """One option as llama.cpp prints it: short name padded to 7, hint, help at column 40."""
    s = names[0] if len(names) == 1 else (names[0] + ", ").ljust(7) + ", ".join(names[1:])
    if hint:
        s += " " + hint
    return (s + "\n" + " " * 40 if len(s) > 37 else s.ljust(40)) + text + "\n"


OPTIONS = [
    (["-m", "--model"], "FNAME", "model path to load"),
    (["--host"], "HOST", "ip address to listen"),
    (["--port"], "PORT", "port to listen (default: 8080)"),
    (["-c", "--ctx-size"], "N", "size of the prompt context (default: 0, 0 = loaded from model)"),
    (["-ngl", "--gpu-layers", "--n-gpu-layers"], "N", "max. number of layers to store in VRAM"),
    (["-np", "--parallel"], "N", "number of server slots (default: -1, -1 = auto)"),
    (["-fa", "--flash-attn"], "[on|off|auto]", "set Flash Attention use ('on', 'off', or 'auto')"),
    (["--metrics"], None, "enable prometheus compatible metrics endpoint (default: disabled)"),
    (["-kvu", "--kv-unified", "-no-kvu", "--no-kv-unified"], None, "use single unified KV buffer"),
    (["-t", "--threads"], "N", "number of CPU threads to use during generation"),
    (["-ctk", "--cache-type-k"], "TYPE", "KV cache data type for K"),
    (["-ctv", "--cache-type-v"], "TYPE", "KV cache data type for V"),
    (["--jinja", "--no-jinja"], None, "whether to use jinja template engine for chat"),
]


def help_of(options=OPTIONS) -> str:
    return ("----- common params -----\n\n" + "".join(option(*o) for o in options)
            + "\nversion: 11434 (unknown)\n")


TEXT = """# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total {pt}
llamacpp:prompt_seconds_total {ps}
llamacpp:tokens_predicted_total {tp}
llamacpp:tokens_predicted_seconds_total {ts}
llamacpp:n_decode_total {nd}
llamacpp:predicted_tokens_seconds 99999
llamacpp:requests_processing {rp}
llamacpp:requests_deferred {rd}
other{{label="x"}} 5
"""


def page(pt=0, ps=0.0, tp=0, ts=0.0, nd=0, rp=0, rd=0):
    return TEXT.format(pt=pt, ps=ps, tp=tp, ts=ts, nd=nd, rp=rp, rd=rd)
