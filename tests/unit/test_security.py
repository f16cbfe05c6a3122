"""Every shipped preset binds loopback unless it says otherwise (composed, nothing started).
This half needs no server, process or socket; the rest is in tests/integration/test_security.py."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

PRESETS = Path(__file__).resolve().parents[2] / "conf" / "model"


def test_every_preset_binds_loopback_unless_it_says_otherwise(compose):
    """Each conf/model/*.yaml (every shipped preset, none forgotten), composed as a user's run
    would: the host is loopback. Only the user's own override opens it up."""
    from benchrun.config import ModelConfig

    assert ModelConfig.host == "127.0.0.1"
    presets = sorted(PRESETS.glob("*.yaml"))
    assert len(presets) >= 7 and "tiny.yaml" in {p.name for p in presets}, presets
    for path in presets:
        name = path.stem
        # A value the preset leaves to the user (`???`, e.g. external's url) is given here, on loopback.
        missing = [k for k, v in OmegaConf.to_container(OmegaConf.load(path)).items() if v == "???"]
        assert set(missing) <= {"url"}, (name, missing)  # a new mandatory field: give it a value here
        extra = ["model.url=http://127.0.0.1:8000"] if missing else []
        assert compose([f"model={name}", *extra]).model.host == "127.0.0.1", name
    assert compose(["model=tiny", "model.host=0.0.0.0"]).model.host == "0.0.0.0"  # the user's say
