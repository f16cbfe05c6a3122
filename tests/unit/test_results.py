"""result.json files: shared-readable atomic writes, one-line schema errors, job ordering."""
import os
import stat

import pytest

from benchrun.results import atomic_write_text, find_results, validate_result


def test_atomic_write_is_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "result.json", "{}\n")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "result.json").stat().st_mode)
    assert mode == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left


def test_schema_error_is_one_line_naming_the_field():
    with pytest.raises(ValueError) as e:
        validate_result({"schema_version": 1, "status": "finished"})
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("result.json invalid at")


def test_find_results_in_job_number_order(tmp_path):
    for name in ("10_b_c1", "2_a_c1", "0_a_c2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text("{}")
    assert [p.parent.name for p in find_results(tmp_path)] == ["0_a_c2", "2_a_c1", "10_b_c1"]
    assert find_results(tmp_path / "2_a_c1") == [tmp_path / "2_a_c1" / "result.json"]


def test_a_schema_mismatch_still_writes_the_result_as_failed(tmp_path):
    from benchrun.results import read_result, write_result

    measured = {"schema_version": 1, "status": "ok", "error": None, "metrics": {"requests_ok": 5}}
    write_result(tmp_path, measured)  # never raises: the measured numbers are kept
    res = read_result(tmp_path / "result.json")
    assert res["status"] == "failed" and res["metrics"] == {"requests_ok": 5}
    assert res["error"].startswith("result.json invalid at")
    write_result(tmp_path, {**measured, "status": "ok", "error": "server died"})
    assert read_result(tmp_path / "result.json")["error"].startswith("server died; result.json invalid")


def test_the_schema_names_exactly_the_fields_of_the_typed_result():
    """One shape of result.json: JobResult's fields are the schema's top-level properties, and
    every field the schema requires is one a JobResult always writes."""
    import dataclasses

    from benchrun.results import JobResult, result_schema

    schema = result_schema()
    names = [f.name for f in dataclasses.fields(JobResult)]
    assert set(schema["properties"]) == set(names)
    always = {f.name for f in dataclasses.fields(JobResult)} - set(JobResult.OPTIONAL)
    assert set(schema["required"]) <= always
