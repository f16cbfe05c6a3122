"""Every shipped config option composes against the typed schemas; mistakes are clear errors."""
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from benchrun.config import validate

CONF = Path(__file__).resolve().parents[2] / "conf"


def _options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_group_has_options():
    for group in ("model", "hardware", "workload"):
        assert _options(group), group
    assert {"tiny", "tiny_wide", "qwen3coder", "qwen35", "external"} <= set(_options("model"))


@pytest.mark.parametrize("name", _options("model"))
def test_every_model_preset_composes(compose, name):
    extra = ["model.url=http://127.0.0.1:1"] if name == "external" else []
    cfg = compose([f"model={name}", *extra])
    assert cfg.model.name == name
    assert cfg.model.backend in ("embedded", "llama_server", "external")
    validate(cfg)


@pytest.mark.parametrize("name", _options("hardware"))
def test_every_hardware_profile_composes(compose, name):
    assert compose([f"hardware={name}"]).hardware.name == name


@pytest.mark.parametrize("name", _options("workload"))
def test_every_workload_composes(compose, name):
    cfg = compose([f"workload={name}"])
    assert cfg.workload.name == name
    validate(cfg)


@pytest.mark.parametrize("name", _options("experiment"))
def test_every_experiment_composes(compose, name):
    cfg = compose([f"experiment={name}"])
    validate(cfg)


def test_seed_presets_match_the_seed_study(compose):
    for name in ("qwen3coder", "qwen35"):
        m = compose([f"model={name}"]).model
        assert (m.backend, m.ctx_size, m.parallel, m.n_gpu_layers) == ("llama_server", 40960, 3, -1)
        assert m.hub_repo and m.hub_file and m.path.endswith(m.hub_file)


def test_models_dir_is_a_machine_setting(compose, monkeypatch):
    monkeypatch.setenv("BENCHRUN_MODELS_DIR", "/data/gguf")
    assert compose(["model=qwen35"]).model.path == "/data/gguf/Qwen3.5-35B-A3B-UD-Q3_K_XL.gguf"


@pytest.mark.parametrize("c", [1, 2, 3, 7, 64])
def test_any_positive_concurrency(compose, c):
    cfg = compose([f"concurrency={c}"])
    validate(cfg)
    assert cfg.concurrency == c


def test_typo_in_key_names_the_key(compose):
    with pytest.raises((ConfigCompositionException, ConfigKeyError)) as e:
        compose(["model.ctx_sise=100"])
    assert "ctx_sise" in str(e.value) + str(e.value.__cause__)


def test_sandbox_settings_are_typed_a_typo_is_refused_not_ignored(compose):
    sb = compose(["workload=agentic_coding", "workload.sandbox.cpu_s=3"]).workload.sandbox
    assert (sb.isolation, sb.cpu_s, sb.limits().cpu_s) == ("auto", 3, 3)
    with pytest.raises((ConfigCompositionException, ConfigKeyError)) as e:
        compose(["workload=agentic_coding", "workload.sandbox.wal_s=3"])
    assert "wal_s" in str(e.value) + str(e.value.__cause__)


def test_wrong_type_names_the_key(compose):
    with pytest.raises((ConfigCompositionException, ValidationError)) as e:
        compose(["model.parallel=many"])
    assert "parallel" in str(e.value) + str(e.value.__cause__)


@pytest.mark.parametrize("override,needle", [
    ("concurrency=0", "concurrency"),
    ("concurrency=-2", "concurrency"),
    ("repeats=0", "repeats"),
    ("model.backend=vllm", "model.backend"),
    ("load.rate=-1", "load.rate"),
    ("load.request_timeout_s=0", "load.request_timeout_s"),
    ("load.max_concurrency=0", "load.max_concurrency"),
    ("load.duration_s=0", "load.duration_s"),
    ("workload.requests=0", "workload.requests"),
    ("model.flash_attn=sideways", "model.flash_attn"),
    ("model.parallel=0", "model.parallel"),
    ("model.ctx_size=-1", "model.ctx_size"),
    ("telemetry.interval_s=0", "telemetry.interval_s"),
    ("model.extra_args=[--mlock]", "model.extra_args is read by backend llama_server only"),
    # Another backend's part of the model schema, on an embedded preset: refused, not ignored.
    ("model.url=http://127.0.0.1:9", "model.url is read by backend external only; this preset runs backend embedded"),
    ("model.binary=/opt/llama-server", "model.binary is read by backend llama_server only"),
    ("model.health_path=/ready", "model.health_path is read by backend command only"),
])
def test_semantic_errors_name_the_key(compose, override, needle):
    cfg = compose([override])
    with pytest.raises(ValueError, match=needle):
        validate(cfg)


def test_external_needs_url(compose):
    from omegaconf.errors import MissingMandatoryValue

    cfg = compose(["model=external"])
    with pytest.raises((ValueError, MissingMandatoryValue), match="url"):
        validate(cfg)


def test_sweep_dirs_are_unique_and_named(compose):
    cfg = compose(["model=tiny_wide", "concurrency=3"], return_hydra_config=True)
    from omegaconf import OmegaConf

    sweep = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)
    assert sweep["subdir"] == "${hydra.job.num}_${model.name}_c${concurrency}"
    run_dir = cfg.hydra.run.dir
    assert run_dir.startswith("outputs/") and run_dir.endswith("/0_tiny_wide_c3")
