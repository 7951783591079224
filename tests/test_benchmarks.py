"""The benchmark apps end to end on the tiny build: `benchmarks.compare` writes results.json,
RESULTS.md and plots that agree with each other and with the build; the IMX500-on-Pi app merges
its row into them; flags and user errors fail cleanly (issue: benchmarks). Nothing here is timed."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, read_manifest
from test_bad_input import run_command

MEASURED_KEYS = {"model", "artifact", "target", "runtime", "threads", "latency_ms_median", "bytes",
                 "params", "macs", "cm"}
KIND_OF_ARTIFACT = {"float": "float_tflite", "tfmot_int8": "int8_tflite", "ptq_int8": "ptq_int8_tflite"}


def run_benchmark(app, *args, env=None, timeout=600):
    """Runs ``python -m benchmarks.APP`` as a user would (TensorFlow's C++ start-up lines off)."""
    return subprocess.run([sys.executable, "-m", f"benchmarks.{app}", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})


def _check(result):
    assert result.returncode == 0, \
        f"exit {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def markdown_section_table(text, heading):
    """The first Markdown table after ``heading`` as a list of {header: cell}."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    headers = [cell.strip() for cell in table[0].strip("|").split("|")]
    return [dict(zip(headers, (cell.strip() for cell in line.strip("|").split("|")))) for line in table[2:]]


def _agrees(cell, value, digits):
    if value is None:
        return cell == "-"
    return abs(float(cell.replace(",", "")) - value) <= 0.5 * 10 ** -digits + 1e-12


# The fake camera: picamera2's interface, reporting DNN runtimes of 800, 810, ... 860 us in turn.
FAKE_PICAMERA2 = '''
import struct


class Picamera2:
    def __init__(self, camera_num=0):
        self.frame = 0

    def create_preview_configuration(self, **settings):
        return settings

    def start(self, config):
        pass

    def stop(self):
        pass

    def capture_metadata(self):
        self.frame += 1
        return {"CnnKpiInfo": struct.pack("II", 800 + 10 * (self.frame % 7), 150 + self.frame % 3),
                "SensorTimestamp": self.frame * 33_333_333}
'''
FAKE_DEVICES = '''
import struct


class IMX500:
    def __init__(self, network_file):
        self.camera_num = 0

    @staticmethod
    def get_kpi_info(metadata):
        dnn, dsp = struct.unpack("II", metadata["CnnKpiInfo"])
        return dnn / 1000, dsp / 1000
'''


def _fake_picamera2(folder):
    package = folder / "picamera2"
    (package / "devices").mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_PICAMERA2)
    (package / "devices" / "__init__.py").write_text(FAKE_DEVICES)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def test_compare_writes_results_report_and_plots_that_agree(tiny_build, tiny_imx500, tiny_data, tmp_path):
    build = tiny_build("tinytracker_s", "qat")
    manifest = read_manifest(build)
    out = tmp_path / "compare"
    shutil.copytree(build, out / "tinytracker_s")  # the build compare must reuse
    shutil.copytree(tiny_imx500("tinytracker_s"), out / "tinytracker_s" / "imx500")
    extra = tmp_path / "users_model.tflite"
    shutil.copy(build / manifest.files["float_tflite"].path, extra)

    result = _check(run_benchmark(
        "compare", "--models=tinytracker_s", f"--data={tiny_data}", "--input_size=32", "--epochs=1",
        "--qat_epochs=1", "--steps=1", f"--out={out}", "--num_runs=5", "--warmup=1",
        f"--extra_models={extra}", f"--reference={extra}"))  # not ../shared's: it may be absent
    assert "reusing the build" in result.stderr and "[compare] 6/6" in result.stderr  # progress

    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    measured = [r for r in rows if r["source"] == "measured" and r["artifact"] != "mean_baseline"]
    assert {(r["artifact"], r["target"], r["runtime"]) for r in measured} == {
        *((a, "cpu", rt) for a in ("float", "tfmot_int8", "ptq_int8", "extra")
          for rt in ("litert", "tflite_runtime")),
        ("tfmot_int8", "edgetpu", "libedgetpu"), ("mct_int8", "imx500", "on-sensor")}
    for row in measured:
        assert MEASURED_KEYS <= set(row), row
    for row in (r for r in measured if r["target"] == "cpu"):
        assert row["status"] == "measured" and row["runs"] == 5
        assert 0 < row["latency_ms_median"] <= row["latency_ms_p90"]
        assert row["fps"] == pytest.approx(1000 / row["latency_ms_median"])
        assert row["vs_reference"] == pytest.approx(row["latency_ms_median"] / row["reference_ms_median"])
        assert row["bytes"] == os.path.getsize(row["file"])
        if row["artifact"] in KIND_OF_ARTIFACT:  # the same test frames as the build's own evaluation
            kind = KIND_OF_ARTIFACT[row["artifact"]]
            assert row["cm"] == pytest.approx(manifest.metrics[kind]["cm"], rel=1e-5)
            assert row["bytes"] == manifest.files[kind].bytes
            assert (row["params"], row["macs"]) == (manifest.params, manifest.macs)
    edgetpu, = (r for r in measured if r["target"] == "edgetpu")
    assert edgetpu["status"] == "not measured: no device" and edgetpu["latency_ms_median"] is None
    assert 0 < edgetpu["preflight"]["ops_on_tpu"] <= edgetpu["preflight"]["ops_total"]
    assert edgetpu["cm"] == pytest.approx(manifest.metrics["int8_tflite"]["cm"], rel=1e-5)
    imx500, = (r for r in measured if r["target"] == "imx500")
    imx500_report = json.loads((out / "tinytracker_s" / "imx500" / "report.json").read_text())
    assert imx500["memory"] == imx500_report["memory"] and imx500["memory"]["usage_bytes"] > 0
    assert imx500["cm"] == pytest.approx(imx500_report["metrics"]["cm"])
    assert imx500["latency_ms_median"] is None and "Raspberry Pi" in imx500["status"]
    published = [r for r in rows if r["source"] == "published"]
    assert published and all(r["model"] == "tinytracker_s" and r["citation"] for r in published)

    report = (out / "RESULTS.md").read_text()
    table = markdown_section_table(report, "Measured here")
    assert len(table) == len(measured)
    for cells, row in zip(table, measured):
        assert [cells[h] for h in ("model", "artifact", "target", "runtime")] == \
            [row["model"], row["artifact"], row["target"], row["runtime"]]
        assert _agrees(cells["median ms"], row["latency_ms_median"], 3)
        assert _agrees(cells["cm"], row["cm"], 3)
        assert cells["bytes"] == f"{row['bytes']:,}"
    assert markdown_section_table(report, "Published (not measured here)")[0]["bytes"] == "169,000"
    for plot in ("error_vs_size.png", "latency.png"):
        assert f"]({plot})" in report
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temp leftovers

    # On the Pi: the sensor's runtimes replace the "not measured" IMX500 row, keeping its figures.
    rpk = out / "tinytracker_s" / "imx500" / "network.rpk"
    rpk.write_bytes(b"an IMX500 network package")
    env = _fake_picamera2(tmp_path / "fake_pi")
    _check(run_benchmark("imx500_on_pi", f"--rpk={rpk}", "--frames=40", "--skip_frames=3",
                         f"--results={out / 'results.json'}", env=env))
    dnn_ms = [(800 + 10 * (frame % 7)) / 1000 for frame in range(4, 44)]
    merged = json.loads((out / "results.json").read_text())["rows"]
    assert len(merged) == len(rows)
    on_pi, = (r for r in merged if r["target"] == "imx500" and r["source"] == "measured")
    assert on_pi["model"] == "tinytracker_s" and on_pi["status"] == "measured" and on_pi["runs"] == 40
    assert on_pi["latency_ms_median"] == pytest.approx(np.median(dnn_ms))
    assert on_pi["camera_fps"] == pytest.approx(30, rel=1e-3)
    assert on_pi["memory"] == imx500["memory"] and on_pi["cm"] == imx500["cm"]
    _check(run_benchmark("compare", "--report_only", f"--out={out}"))
    imx500_cells, = (c for c in markdown_section_table((out / "RESULTS.md").read_text(), "Measured here")
                     if c["target"] == "imx500")
    assert _agrees(imx500_cells["median ms"], np.median(dnn_ms), 3)


def test_latency_app_times_every_artifact_of_a_build(tiny_build):
    build = tiny_build("tinytracker_s", "qat")
    result = _check(run_benchmark("latency", build, "--runtimes=litert", "--num_runs=3", "--warmup=0",
                                  "--json"))
    rows = json.loads(result.stdout)
    assert [(r["artifact"], r["target"]) for r in rows] == [
        ("float", "cpu"), ("tfmot_int8", "cpu"), ("ptq_int8", "cpu"), ("tfmot_int8", "edgetpu")]
    assert all(r["latency_ms_median"] > 0 and r["runs"] == 3 for r in rows[:3])
    assert rows[3]["status"] == "not measured: no device"


def test_int8_speedup_app_times_float_and_int8_of_each_layer(tmp_path):
    from zoo import tflite
    out = tmp_path / "layers"
    result = _check(run_benchmark("int8_speedup", "--layers=depthwise3x3_96_28x28,dense_1024",
                                  "--runtimes=litert", "--num_runs=3", "--warmup=0", f"--out={out}", "--json"))
    rows = json.loads(result.stdout)
    assert [(r["layer"], r["runtime"]) for r in rows] == [("depthwise3x3_96_28x28", "litert"),
                                                         ("dense_1024", "litert")]
    assert all(r["speedup"] == pytest.approx(r["float_ms"] / r["int8_ms"]) for r in rows)
    assert rows[1]["macs"] == 1024 * 1024
    assert "8-bit dot-product instructions:" in result.stderr
    for layer in ("depthwise3x3_96_28x28", "dense_1024"):  # kept for benchmarks.latency elsewhere
        int8 = tflite.read_graph(out / f"{layer}_int8.tflite")
        assert {int8.tensors[i].dtype for i in int8.inputs + int8.outputs} == {"int8"}
        float_ = tflite.read_graph(out / f"{layer}_float.tflite")
        assert {float_.tensors[i].dtype for i in float_.inputs} == {"float32"}


def test_build_figures_are_reused_only_for_the_frames_they_were_measured_on(tiny_build, monkeypatch):
    from benchmarks import accuracy
    build = tiny_build("tinytracker_s", "qat")
    fewer = accuracy.accuracy_rows(build, frames=3, reuse_build_figures=True)
    assert {r["frames"] for r in fewer} == {3}
    evaluated = accuracy.accuracy_rows(build)
    monkeypatch.setattr(accuracy, "_evaluate", lambda *args: pytest.fail("evaluated again"))
    reused = accuracy.accuracy_rows(build, reuse_build_figures=True)  # what compare does
    assert [(r["artifact"], r["frames"]) for r in reused] == [(r["artifact"], r["frames"]) for r in evaluated]
    for again, measured in zip(reused, evaluated):
        for key in ("cm", "cm_phone", "cm_tablet"):  # None where the tiny split has no tablet
            expected = measured[key] if measured[key] is None else pytest.approx(measured[key], rel=1e-6)
            assert again[key] == expected, (again["artifact"], key)


def test_accuracy_app_keeps_figures_of_other_frames_apart(tiny_build, tiny_imx500, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(tiny_build("tinytracker_s", "qat"), build)
    shutil.copytree(tiny_imx500("tinytracker_s"), build / "imx500")
    rows = json.loads(_check(run_benchmark("accuracy", build, "--frames=3", "--json")).stdout)
    assert [r["artifact"] for r in rows] == ["float", "tfmot_int8", "ptq_int8", "mct_int8", "mean_baseline"]
    assert all(r["frames"] == 3 and r["cm"] > 0 for r in rows if r["artifact"] != "mct_int8")
    mct, = (r for r in rows if r["artifact"] == "mct_int8")  # evaluated on the whole split: not shown
    assert mct["cm"] is None and "not these 3" in mct["note"]


@pytest.mark.parametrize("app, args, message", [
    ("compare", ["--models=tinytracker,nosuchnet", "--data=/nonexistent"], "not a GazeCapture root"),
    ("compare", ["--models=tinytracker,nosuchnet"], "--models must be registered models"),
    ("latency", ["--num_runs=-1", "m.tflite"], "flag --num_runs=-1"),
    ("latency", ["--runtimes=onnxruntime", "m.tflite"], "--runtimes must be"),
    ("accuracy", ["--frames=0", "runs/x"], "flag --frames=0"),
    ("int8_speedup", ["--layers=conv9x9"], "--layers must be"),
    ("int8_speedup", ["--threads=0"], "flag --threads=0"),
    ("imx500_on_pi", [], "--rpk must have a value"),
    ("imx500_on_pi", ["--rpk=/nonexistent/network.rpk"], "--rpk must be an existing .rpk file"),
])
def test_bad_flag_values_are_one_line_exit_2(app, args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))  # compare must fail before rendering the default data
    assert run_command(app, args) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and not list(tmp_path.iterdir())


@pytest.mark.parametrize("app, flags", [
    ("compare", ["models", "out", "extra_models", "targets", "report_only", "num_runs", "threads", "data"]),
    ("latency", ["runtimes", "threads", "warmup", "num_runs", "reference", "json"]),
    ("accuracy", ["data", "frames", "json"]),
    ("int8_speedup", ["layers", "out", "runtimes", "threads", "num_runs", "json"]),
    ("imx500_on_pi", ["rpk", "name", "frames", "results"]),
])
def test_help_explains_every_flag(app, flags, capsys):
    assert run_command(app, ["--help"]) == 0
    stdout = capsys.readouterr().out
    for flag in flags:
        line = next((line for line in stdout.splitlines()
                     if line.strip().startswith((f"--{flag}:", f"--[no]{flag}:"))), "")
        assert len(line.split(":", 1)[1].strip()) > 5, f"--{flag} has no help text:\n{stdout}"


def test_user_errors_are_one_line_exit_2(tmp_path, capsys):
    rpk = tmp_path / "network.rpk"
    rpk.write_bytes(b"rpk")
    for app, args, message in [
            ("latency", [tmp_path / "missing.tflite"], "no such .tflite file"),
            ("accuracy", [tmp_path], "not a build folder"),
            ("imx500_on_pi", [f"--rpk={rpk}", f"--results={tmp_path / 'r.json'}"],
             "picamera2 is not installed")]:
        assert run_command(app, [str(arg) for arg in args]) == 2
        stderr = capsys.readouterr().err
        assert message in stderr and stderr.count("\n") == 1, stderr
    assert not (tmp_path / "r.json").exists()
