"""The benchmark apps end to end on the tiny build, each run in this process as its command line
would run it: `benchmarks.compare` writes results.json, RESULTS.md and plots that agree with each
other, with the build and with every target's report; the IMX500-on-Pi app merges its row into
them; flags and user errors fail cleanly (issue: benchmarks). Nothing here is timed."""
import dataclasses
import json
import os
import shutil
import sys
import types

import numpy as np
import pytest

from conftest import read_manifest
import fake_picamera2 as fake_picamera2_source
from hostile import run_command

MEASURED_KEYS = {"model", "artifact", "target", "runtime", "threads", "latency_ms_median", "bytes",
                 "params", "macs", "cm"}
KIND_OF_ARTIFACT = {"float": "float_tflite", "tfmot_int8": "int8_tflite", "ptq_int8": "ptq_int8_tflite"}


def run_benchmark(capsys, app, *args):
    """(stdout, stderr) of ``python -m benchmarks.APP ARGS`` run in this process; it must succeed."""
    status = run_command(app, [str(arg) for arg in args])
    captured = capsys.readouterr()
    assert status == 0, f"exit {status}:\n{captured.out[-3000:]}\n{captured.err[-3000:]}"
    return captured.out, captured.err


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


@pytest.fixture
def fake_picamera2(tmp_path, monkeypatch):
    """picamera2 importable from a folder of fakes for the test, and gone after it."""
    package = tmp_path / "fake_pi" / "picamera2"
    (package / "devices").mkdir(parents=True)
    (package / "__init__.py").write_text(fake_picamera2_source.PICAMERA2)
    (package / "devices" / "__init__.py").write_text(fake_picamera2_source.DEVICES)
    monkeypatch.syspath_prepend(str(package.parent))
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == "picamera2"]:
        del sys.modules[name]


# The key of each target's row: (artifact, runtime). A target without an entry (one added to
# compilers/targets.py) compiles the tfmot int8 model and names its row's runtime after itself.
TARGET_ROW_KEYS = {"edgetpu": ("tfmot_int8", "libedgetpu"), "imx500": ("mct_int8", "on-sensor")}


def _target_key(name):
    return TARGET_ROW_KEYS.get(name, ("tfmot_int8", name))


def _as_json(record):
    return json.loads(json.dumps(dataclasses.asdict(record)))


def _check_cpu_rows(cpu_rows, manifest):
    """Timed as asked, against the reference, with the build's own figures where they apply."""
    for row in cpu_rows:
        assert row["status"] == "measured" and row["runs"] == 5
        assert 0 < row["latency_ms_median"] <= row["latency_ms_p90"]
        assert row["fps"] == pytest.approx(1000 / row["latency_ms_median"])
        assert row["vs_reference"] == pytest.approx(row["latency_ms_median"] / row["reference_ms_median"])
        assert row["bytes"] == os.path.getsize(row["file"])
        if row["artifact"] in KIND_OF_ARTIFACT:  # the same test frames as the build's own evaluation
            kind = KIND_OF_ARTIFACT[row["artifact"]]
            assert row["cm"] == pytest.approx(manifest.metrics[kind].cm, rel=1e-5)
            assert row["bytes"] == manifest.files[kind].bytes
            assert (row["params"], row["macs"]) == (manifest.params, manifest.macs)


def _check_target_rows(target_rows, build):
    """Each target's row is its report's headline, with its latency and the basis of that."""
    from compilers.targets import TARGETS
    for row in target_rows:
        report = TARGETS[row["target"]].module().read_report(build / row["target"])
        assert row["headline"] == _as_json(report.headline), row["target"]
        assert row["performance"] == row["headline"]["performance"]  # nothing was measured on a device


def _check_targets_table(cells_of_rows, target_rows):
    """RESULTS.md's Targets table says what each target row's headline says."""
    assert [(c["model"], c["target"]) for c in cells_of_rows] == \
        [(r["model"], r["target"]) for r in target_rows]
    for cells, row in zip(cells_of_rows, target_rows):
        headline, performance = row["headline"], row["headline"]["performance"]
        assert cells["status"] == headline["status"]
        ops = f"{headline['ops_on_accelerator']}/{headline['ops_total']}"
        assert cells["operators on the accelerator"] == ops
        assert cells["latency"] == (f"{performance['latency_ms']:.3g} ms ({performance['kind']})"
                                    if performance["latency_ms"] is not None else "no estimate")
        assert cells["basis"].startswith(performance["basis"][:60].replace("|", "\\|"))
    assert next(c for c in cells_of_rows if c["target"] == "edgetpu")["latency"].endswith(" ms (estimated)")


def _check_edgetpu_and_imx500_rows(measured, manifest, build):
    """The two targets' own fields: the Edge TPU's pre-flight and estimate, the IMX500's memory and
    cm from its report; the IMX500 row."""
    edgetpu, = (r for r in measured if r["target"] == "edgetpu")
    assert edgetpu["status"] == "not measured: no device" and edgetpu["latency_ms_median"] is None
    assert 0 < edgetpu["preflight"]["ops_on_tpu"] <= edgetpu["preflight"]["ops_total"]
    assert edgetpu["cm"] == pytest.approx(manifest.metrics["int8_tflite"].cm, rel=1e-5)
    assert edgetpu["performance"]["kind"] == "estimated" and edgetpu["performance"]["latency_ms"] > 0
    imx500, = (r for r in measured if r["target"] == "imx500")
    imx500_report = json.loads((build / "imx500" / "report.json").read_text())
    assert imx500["memory"] == imx500_report["memory"] and imx500["memory"]["usage_bytes"] > 0
    assert imx500["cm"] == pytest.approx(imx500_report["metrics"]["mct"]["cm"])
    assert imx500["latency_ms_median"] is None and "Raspberry Pi" in imx500["status"]
    assert imx500["performance"]["kind"] == "none"  # TinyTrackerS at 32x32: nothing published
    return imx500


def test_compare_writes_results_report_and_plots_that_agree(tiny_build, tiny_imx500, tiny_data, tmp_path,
                                                            capsys, fake_picamera2):
    from compilers.targets import TARGETS
    build = tiny_build("tinytracker_s", "qat")
    manifest = read_manifest(build)
    out = tmp_path / "compare"
    shutil.copytree(build, out / "tinytracker_s")  # the build compare must reuse
    shutil.copytree(tiny_imx500("tinytracker_s"), out / "tinytracker_s" / "imx500")
    extra = tmp_path / "users_model.tflite"
    shutil.copy(build / manifest.files["float_tflite"].path, extra)

    _, stderr = run_benchmark(
        capsys, "compare", "--models=tinytracker_s", f"--data={tiny_data}", "--input_size=32", "--epochs=1",
        "--qat_epochs=1", "--steps=1", f"--out={out}", "--num_runs=5", "--warmup=1",
        f"--extra_models={extra}", f"--reference={extra}")  # not ../shared's: it may be absent
    assert "reusing the build" in stderr and "[compare] 6/6" in stderr  # progress
    assert "reusing the Sony IMX500" in stderr  # a reused target is not converted again

    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    measured = [r for r in rows if r["source"] == "measured" and r["artifact"] != "mean_baseline"]
    assert {(r["artifact"], r["target"], r["runtime"]) for r in measured} == {
        *((a, "cpu", rt) for a in ("float", "tfmot_int8", "ptq_int8", "extra")
          for rt in ("litert", "tflite_runtime")),
        *((_target_key(name)[0], name, _target_key(name)[1]) for name in TARGETS)}  # every target, by default
    for row in measured:
        assert MEASURED_KEYS <= set(row), row
    _check_cpu_rows([r for r in measured if r["target"] == "cpu"], manifest)
    target_rows = [r for r in measured if r["target"] in TARGETS]
    _check_target_rows(target_rows, out / "tinytracker_s")
    imx500 = _check_edgetpu_and_imx500_rows(measured, manifest, out / "tinytracker_s")
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
    _check_targets_table(markdown_section_table(report, "Targets"), target_rows)
    assert markdown_section_table(report, "Published (not measured here)")[0]["bytes"] == "169,000"
    for plot in ("error_vs_size.png", "latency.png", "error_vs_latency.png"):
        assert f"]({plot})" in report
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temp leftovers

    _check_measured_on_the_pi(capsys, out, rows, imx500)


def _check_measured_on_the_pi(capsys, out, rows, imx500):
    """On the Pi: the sensor's runtimes replace the "not measured" IMX500 row, keeping its figures,
    and its latency replaces the target's own performance section in RESULTS.md."""
    rpk = out / "tinytracker_s" / "imx500" / "network.rpk"
    rpk.write_bytes(b"an IMX500 network package")
    run_benchmark(capsys, "imx500_on_pi", f"--rpk={rpk}", "--frames=40", "--skip_frames=3",
                  f"--results={out / 'results.json'}")
    dnn_ms = [(800 + 10 * (frame % 7)) / 1000 for frame in range(4, 44)]
    merged = json.loads((out / "results.json").read_text())["rows"]
    assert len(merged) == len(rows)
    on_pi, = (r for r in merged if r["target"] == "imx500" and r["source"] == "measured")
    assert on_pi["model"] == "tinytracker_s" and on_pi["status"] == "measured" and on_pi["runs"] == 40
    assert on_pi["latency_ms_median"] == pytest.approx(np.median(dnn_ms))
    assert on_pi["camera_fps"] == pytest.approx(30, rel=1e-3)
    assert on_pi["memory"] == imx500["memory"] and on_pi["cm"] == imx500["cm"]
    run_benchmark(capsys, "compare", "--report_only", f"--out={out}")
    again = (out / "RESULTS.md").read_text()
    imx500_cells, = (c for c in markdown_section_table(again, "Measured here") if c["target"] == "imx500")
    assert _agrees(imx500_cells["median ms"], np.median(dnn_ms), 3)
    imx500_target, = (c for c in markdown_section_table(again, "Targets") if c["target"] == "imx500")
    assert imx500_target["latency"] == f"{np.median(dnn_ms):.3g} ms (measured)"  # replaces "no estimate"


class _FakeTarget:
    """A target of the table's shape whose module is a stand-in: compile() counts its calls and
    fails when told to; its report is nothing but a headline."""

    def __init__(self, name, reused, fail=False):
        from compilers.report import Headline, from_latency
        from compilers.targets import Target
        self.row = Target(name, f"Fake {name}", "nothing", (), reused=reused)
        self.calls, self.fail = 0, fail
        self.headline = Headline(name, "compiled", True, {"sram_bytes": 1024, "flash_bytes": 4096}, 40, 39,
                                 from_latency("estimated", 1.5, "the vendor's cycle estimate at 500 MHz"))

    def compile(self, model, out_dir, progress=None):
        self.calls += 1
        if self.fail:
            raise RuntimeError("the toolchain crashed\nwith a second line")
        out_dir.mkdir()
        (out_dir / "report.json").write_text("{}")
        return types.SimpleNamespace(headline=self.headline)

    def read_report(self, folder):
        return types.SimpleNamespace(headline=self.headline)


class _WithModule:
    """A target row whose module() is ``fake`` (compilers.targets.Target imports the real one)."""

    def __init__(self, fake):
        self._fake = fake

    def __getattr__(self, name):
        return getattr(self._fake.row, name)

    def module(self):
        return self._fake


def _compile_fake(fake, folder, int8, rebuild=False):
    from benchmarks import on_targets
    return on_targets.compile_target(_WithModule(fake), folder, int8, rebuild, lambda message: None)


def test_a_target_without_a_table_of_its_own_gets_its_row_from_the_headline(tiny_build, tmp_path):
    import benchmarks
    from benchmarks import latency, on_targets, report, results
    build = tmp_path / "build"
    shutil.copytree(tiny_build("tinytracker_s", "qat"), build)
    int8 = next(a for a in benchmarks.build_artifacts(build) if a.artifact == "tfmot_int8")
    errors = {"artifact": "tfmot_int8", "cm": 3.25, "cm_phone": 3.0, "cm_tablet": None, "frames": 12}
    context = on_targets.Context(build, int8, [errors], latency.Timing())

    fake = _FakeTarget("npu", reused=False)
    row = on_targets.target_row(_compile_fake(fake, build, int8), context)
    assert fake.calls == 1 and (build / "npu" / "report.json").is_file()
    assert (row["model"], row["artifact"], row["target"], row["runtime"]) == ("tinytracker_s", "tfmot_int8",
                                                                              "npu", "npu")
    assert row["headline"] == _as_json(fake.headline) and row["performance"]["latency_ms"] == 1.5
    assert (row["cm"], row["frames"], row["bytes"]) == (3.25, 12, int8.bytes)
    cells = report._target_cells(results.row_record(row))
    assert cells[3:] == ["yes", "sram 1,024 B; flash 4,096 B", "39/40", "1.5 ms (estimated)",
                         "the vendor's cycle estimate at 500 MHz"]
    _compile_fake(fake, build, int8)
    assert fake.calls == 2  # a target not marked reused compiles again

    broken = _FakeTarget("slow", reused=True, fail=True)
    failed = on_targets.target_row(_compile_fake(broken, build, int8), context)
    assert failed["status"] == "not compiled: RuntimeError: the toolchain crashed; with a second line"
    assert "headline" not in failed
    assert report._target_cells(results.row_record(failed))[2] == failed["status"]
    assert _compile_fake(broken, build, int8).failure == failed["status"].removeprefix("not compiled: ")
    assert broken.calls == 1  # a reused target's failure is kept until --rebuild
    _compile_fake(broken, build, int8, rebuild=True)
    assert broken.calls == 2


def test_latency_app_times_every_artifact_of_a_build(tiny_build, capsys):
    build = tiny_build("tinytracker_s", "qat")
    stdout, _ = run_benchmark(capsys, "latency", build, "--runtimes=litert", "--num_runs=3", "--warmup=0",
                              "--json", "--device=usb:0")
    rows = json.loads(stdout)
    assert [(r["artifact"], r["target"]) for r in rows] == [
        ("float", "cpu"), ("tfmot_int8", "cpu"), ("ptq_int8", "cpu"), ("tfmot_int8", "edgetpu")]
    assert all(r["latency_ms_median"] > 0 and r["runs"] == 3 for r in rows[:3])
    assert rows[3]["status"] == "not measured: no device at usb:0" and "performance" not in rows[3]


def test_int8_speedup_app_times_float_and_int8_of_each_layer(tmp_path, capsys):
    from zoo import tflite
    out = tmp_path / "layers"
    stdout, stderr = run_benchmark(capsys, "int8_speedup", "--layers=depthwise3x3_96_28x28,dense_1024",
                                   "--runtimes=litert", "--num_runs=3", "--warmup=0", f"--out={out}",
                                   "--json")
    rows = json.loads(stdout)
    assert [(r["layer"], r["runtime"]) for r in rows] == [("depthwise3x3_96_28x28", "litert"),
                                                          ("dense_1024", "litert")]
    assert all(r["speedup"] == pytest.approx(r["float_ms"] / r["int8_ms"]) for r in rows)
    assert rows[1]["macs"] == 1024 * 1024
    assert "8-bit dot-product instructions:" in stderr
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


def test_accuracy_app_keeps_figures_of_other_frames_apart(tiny_build, tiny_imx500, tmp_path, capsys):
    build = tmp_path / "build"
    shutil.copytree(tiny_build("tinytracker_s", "qat"), build)
    shutil.copytree(tiny_imx500("tinytracker_s"), build / "imx500")
    rows = json.loads(run_benchmark(capsys, "accuracy", build, "--frames=3", "--json")[0])
    assert [r["artifact"] for r in rows] == ["float", "tfmot_int8", "ptq_int8", "mct_int8", "mean_baseline"]
    assert all(r["frames"] == 3 and r["cm"] > 0 for r in rows if r["artifact"] != "mct_int8")
    mct, = (r for r in rows if r["artifact"] == "mct_int8")  # evaluated on the whole split: not shown
    assert mct["cm"] is None and "not these 3" in mct["note"]


@pytest.mark.parametrize("app, args, message", [
    ("compare", ["--models=tinytracker,nosuchnet", "--data=/nonexistent"], "not a GazeCapture root"),
    ("compare", ["--models=tinytracker,nosuchnet"], "--models must be registered models"),
    ("compare", ["--targets=edgetpu,nosuch"], "--targets must be a comma-separated subset of edgetpu"),
    ("compare", ["--targets=edgetpu,edgetpu"], "each once"),
    ("latency", ["--device=gpu:0", "m.tflite"], "--device must be usb, usb:N"),
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
    ("compare", ["models", "out", "extra_models", "targets", "report_only", "num_runs", "threads", "data",
                 "device"]),
    ("latency", ["runtimes", "threads", "warmup", "num_runs", "reference", "device", "json"]),
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
