"""results.json of benchmarks.compare as a typed record (benchmarks.results): the first layout
reads and renders, is written back with its kind and schema version; a merged row keeps what it
does not know; a foreign, newer or damaged file is one line."""
import json

import pytest

from hostile import run_command


ROW_KEY = {"source": "measured", "model": "tinytracker_s", "artifact": "float", "target": "cpu",
           "runtime": "litert", "threads": 1}
FIRST_LAYOUT_ROW = {**ROW_KEY, "status": "measured", "latency_ms_median": 1.5, "latency_ms_p90": 2.0,
                    "fps": 666.7, "runs": 5, "cm": 3.25, "cm_phone": 3.0, "cm_tablet": None, "frames": 12,
                    "bytes": 1000, "params": 10, "macs": 100, "file": "m.tflite"}


def _first_layout(rows):
    """A results.json of the first layout ("schema": 1, no kind), as benchmarks.compare wrote it."""
    return {"schema": 1, "command": "python -m benchmarks.compare", "created": "2024-01-01T00:00:00",
            "machine": {"cpu": "a CPU", "cores": 2, "machine": "x86_64", "system": "Linux",
                        "load_average": [1.0]},
            "data": {"root": "/data"},
            "timing": {"threads": 1, "warmup": 1, "num_runs": 5, "max_seconds": 5.0, "runtimes": ["litert"],
                       "reference": None},
            "seconds": {"total": 60.0}, "rows": rows}


def test_results_json_is_a_typed_record_that_reads_its_first_layout(tmp_path, capsys):
    """The first layout reads (and renders with --report_only), is written back with its kind and
    schema version; a row merged in keeps the figures it does not know; a foreign or newer file
    is one line."""
    from benchmarks import results
    from zoo.errors import UsageError
    out = tmp_path / "compare"
    out.mkdir()
    path = out / "results.json"
    path.write_text(json.dumps(_first_layout([FIRST_LAYOUT_ROW])))
    document = results.read_results(path)
    assert document.rows == [results.row_record(FIRST_LAYOUT_ROW)] and document.timing.num_runs == 5
    assert document.rows[0].cm == 3.25 and document.rows[0].headline is None
    assert run_command("compare", ["--report_only", f"--out={out}"]) == 0, capsys.readouterr().err
    value = json.loads(path.read_text())
    assert (value["kind"], value["schema_version"], "schema" in value) == ("benchmarks.results", 3, False)
    assert results.read_results(path) == document
    assert "| tinytracker_s | float | cpu | litert | 1 | 1.500 |" in (out / "RESULTS.md").read_text()
    merged = results.merge_rows(document, [results.row_record({**ROW_KEY, "latency_ms_median": 0.9})]).rows
    assert len(merged) == 1 and (merged[0].latency_ms_median, merged[0].cm) == (0.9, 3.25)
    with pytest.raises(ValueError, match=r"\['latency'\] are not fields"):
        results.row_record({**ROW_KEY, "latency": 0.9})
    for text, message in ((json.dumps({**value, "kind": "zoo.build"}), "not a benchmarks.results record"),
                          (json.dumps({**value, "schema_version": 4}), "written with schema version 4"),
                          (json.dumps({**value, "rows": [{"model": "x"}]}), r"rows\[0\] lacks source")):
        path.write_text(text)
        with pytest.raises(UsageError, match=message):
            results.read_results(path)
