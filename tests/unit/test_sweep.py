"""Run ids: unique even for runs started in the same second.
This half needs no server, process or socket; the rest is in tests/integration/test_sweep.py."""


def test_run_ids_are_unique_even_in_the_same_second(monkeypatch):
    import datetime as real_dt
    import types

    from benchrun import hydra_setup
    from benchrun.hydra_setup import runids

    frozen = real_dt.datetime(2026, 12, 1, 12, 0, 0)  # every run starts in this very second
    monkeypatch.setattr(runids, "dt", types.SimpleNamespace(
        datetime=types.SimpleNamespace(now=lambda: frozen)))
    ids = []
    for _ in range(200):
        monkeypatch.delenv(hydra_setup.RUN_ID_ENV, raising=False)
        ids.append(hydra_setup.run_id())
    assert {i[:20] for i in ids} == {"2026-12-01_12-00-00_"}
    assert len(set(ids)) == 200
