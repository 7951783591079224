"""Every command fed bad input, as a hostile user would (issue #14): each case runs the command in
this process (zoo.cli.main, the compilers' mains, each benchmark app through benchmarks.command)
and must end with its exit status, one line on stderr, no traceback, and every folder it was
given or could write into exactly as it was (nothing written, nothing of the user's removed)."""
import dataclasses
import os
import subprocess
import sys

import pytest

from conftest import REPO
from hostile import MOUNTS, make_inputs, run_command, tmpfs_mounts, tree


# ---- inputs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Every bad (and a few good) input the cases refer to, as {placeholder: path}; "root" holds them all."""
    return make_inputs(tmp_path_factory.mktemp("bad_inputs"))


@pytest.fixture(scope="module")
def mounts(tmp_path_factory):
    """{"full": a 64 KiB tmpfs, "readonly": a read-only tmpfs, "filled": a 16 KiB tmpfs with no
    byte free}; skips where mounting is refused."""
    with tmpfs_mounts(tmp_path_factory.mktemp("mounts")) as made:
        if isinstance(made, str):
            pytest.skip(f"cannot mount a tmpfs here: {made}")
        yield made


# ---- cases ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Case:
    command: str  # "zoo", a target of compilers/targets.py or a benchmark app's module name
    argv: tuple  # "{name}" is replaced by the path of that input ({out}: a fresh empty folder)
    status: int
    message: str  # in the last stderr line (on stdout for status 0)
    lines: int = 1  # stderr lines: progress lines come before a tool's failure


def case(command, argv, status, message, lines=1, marks=()):
    return pytest.param(Case(command, tuple(argv.split()), status, message, lines), marks=marks,
                        id=f"{command} {argv}"[:80])


CASES = [
    # zoo: arguments
    case("zoo", "", 2, "the following arguments are required: COMMAND"),
    case("zoo", "frobnicate", 2, "invalid choice"),
    case("zoo", "info resnet", 2, "unknown model 'resnet'"),
    case("zoo", "info {empty}", 2, "not a TFLite model"),
    case("zoo", "info {truncated}", 2, "truncated or corrupt"),
    case("zoo", "info {not_hdf5}", 2, "zoo info reads .tflite files"),
    case("zoo", "data render", 2, "required: --out"),
    case("zoo", "data render --out {out}/d --subjects 0", 2, "must be at least 1"),
    case("zoo", "data render --out {out}/d --subjects 2", 2, "at least 3"),
    case("zoo", "data render --out {out}/d --subjects 1000000000", 2, "must be 1 to 10,000"),
    case("zoo", "data render --out {out}/d --frames 99999999", 2, "must be 1 to 10,000"),
    case("zoo", "data render --out {out}/d --seed -1", 2, "must be at least 0"),
    case("zoo", "data render --out {out}/d --seed 99999999999", 2, "must be at most"),
    case("zoo", "data render --out {users} --subjects 3 --frames 1", 2, "already exists; choose a new --out, "
         "or pass --overwrite"),
    case("zoo", "data render --out {text} --subjects 3 --frames 1", 2, "is a file"),
    case("zoo", "data render --out {build} --subjects 3 --frames 1 --overwrite", 2,
         "is a zoo build, which zoo data render never replaces; write to {build}/data instead"),
    case("zoo", "data render --out {packaged}/imx500 --subjects 3 --frames 1 --overwrite", 2,
         "is the output of compilers/imx500.py"),
    case("zoo", "data render --out /proc/zoo-data --subjects 3 --frames 1", 2, "choose another --out"),
    case("zoo", "data render --out {readonly}/d --subjects 3 --frames 1", 2, "cannot write there"),
    case("zoo", "data render --out {full}/d --subjects 3 --frames 40", 2, "kB free"),
    case("zoo", "data render --out {full}/d --subjects 3 --frames 2", 1,
         "no space left on the device of {full}: d needs more than the"),
    case("zoo", "data stats /nonexistent", 2, "no such folder"),
    case("zoo", "data stats {text}", 2, "it is a file"),
    case("zoo", "data stats {recording}", 2, "looks like one recording"),
    case("zoo", "data stats {deep}", 0, "1 recordings (malformed JSON)", lines=0),
    case("zoo", "data stats {corrupt}", 0, "frames (corrupt JPEG)", lines=0),
    case("zoo", "data stats {huge_frame}", 2,
         "declares 65,535 x 65,535 pixels, over the limit of 268,435,456"),
    # zoo build
    case("zoo", "build tinytracker_s --epochs 0", 2, "must be at least 1, got 0"),
    case("zoo", "build tinytracker_s --learning-rate 0", 2, "must be a positive number"),
    case("zoo", "build tinytracker_s --learning-rate -1", 2, "must be a positive number"),
    case("zoo", "build tinytracker_s --learning-rate nan", 2, "must be a positive number"),
    case("zoo", "build tinytracker_s --seed -5", 2, "must be at least 0"),
    case("zoo", "build tinytracker_s --input-size 1", 2, "must be at least 32"),
    case("zoo", "build tinytracker --weights {out}/missing.h5", 2, "no such file"),
    case("zoo", "build tinytracker --weights {not_hdf5}", 2, "is not an HDF5"),
    case("zoo", "build tinytracker --qat --ptq", 2, "not allowed with argument"),
    case("zoo", "build tinytracker_s --data /nonexistent", 2, "not a GazeCapture root"),
    case("zoo", "build nosuchnet --data {data} --out {out}/b", 2, "unknown model 'nosuchnet'"),
    case("zoo", "build tinytracker_s --data {data} --out {users}", 2, "not written by this project"),
    case("zoo", "build tinytracker_s --data {data} --out {text}", 2, "is a file"),
    case("zoo", "build tinytracker_s --data {data} --out {out}/b --resume", 2, "nothing to resume"),
    case("zoo", "build tinytracker_s --input-size 32 --data {corrupt} --out {out}/b --epochs 1 --steps 1", 2,
         "decodes as a JPEG"),
    case("zoo", "build tinytracker_s --data {corrupt} --out {build}", 2,
         "holds zoo build's output of other inputs (data); pass --overwrite to replace it"),
    case("zoo", "build tinytracker_s --data {data} --out {packaged}/imx500 --overwrite", 2,
         "is the output of compilers/imx500.py, which zoo build never replaces; write to runs/tinytracker_s"),
    case("zoo", "build tinytracker_s --data {data} --out {root}", 2, "an input of zoo build"),
    case("zoo", "build tinytracker_s --data {data} --out {filled}/b --input-size 32 --epochs 1 --steps 1", 1,
         "no space left on the device of {filled}: b needs more than the 0 bytes written"),
    case("zoo", "build tinytracker_s --data {huge_frame} --out {out}/b", 2, "over the limit of 268,435,456"),
    case("zoo", "build tinytracker_s --qat-epochs 3", 2, "--qat-epochs sets the fine-tuning of --qat"),
    case("zoo", "build tinytracker_s --int8-output", 2, "add --qat or --ptq, or drop --int8-output"),
    case("zoo", "build tinytracker_s --resume --overwrite", 2, "drop one of them"),
    case("zoo", "build tinytracker_s --cluster-timeout 5", 2, "add --strategy multi_worker or drop"),
    case("zoo", "build tinytracker_s --strategy multi_worker --cluster-timeout nan", 2, "must be above 0"),
    case("zoo", "build tinytracker_s --batch-size 100000", 2, "must be at most 4096"),
    # zoo predict
    case("zoo", "predict {build} {photo} --out {build}", 2,
         "holds {build}, an input of zoo predict, which never writes there; write to {build}/predict "
         "instead"),
    case("zoo", "predict {build} {photo} --out {build} --overwrite", 2, "write to {build}/predict instead"),
    case("zoo", "predict {build}/m_float.tflite {photo} --out {build}", 2, "holds {build}/m_float.tflite"),
    case("zoo", "predict {build} {photo} --out {packaged}", 2,
         "is a zoo build, which zoo predict never replaces; write to {packaged}/predict instead"),
    case("zoo", "predict {build} {photo} --out {packaged}/imx500 --overwrite", 2,
         "is the output of compilers/imx500.py, which zoo predict never replaces; write to "
         "{packaged}/predict instead"),
    case("zoo", "predict {build} {photo} --out {photos} --overwrite", 2, "holds {photo}, an input"),
    case("zoo", "predict {build} {photo} --out {users}", 2, "or pass --overwrite to add to it"),
    case("zoo", "predict {build} {huge}", 2,
         "declares 100,000 x 100,000 pixels, over the limit of 268,435,456 pixels"),
    case("zoo", "predict {build} {huge_jpeg}", 2, "declares 65,535 x 65,535 pixels, over the limit"),
    case("zoo", "predict {build} {damaged}", 2,
         "of the 60 frames its header declares (the file is cut short"),
    case("zoo", "predict {build} {cut}", 2, "of the 60 frames its header declares (the file is cut short"),
    case("zoo", "predict {build} {cut} --out {out}/p", 2, "or keep going on the frames it holds"),
    case("zoo", "predict {other_h5} {photo}", 2, "holds a Keras model named 'tinytracker' with inputs image"),
    case("zoo", "predict {build} {photo} --max-frames 3", 2, "every INPUT is a photo; drop it"),
    case("zoo", "predict {build} {photo} --keep-going", 2, "no INPUT is a video file"),
    case("zoo", "predict {build} {photo} --overwrite", 2, "add --out or drop it"),
    case("zoo", "predict {build} {photo} --out {full}/p", 1,
         "no space left on the device of {full}: p needs more than the"),
    # zoo eval
    case("zoo", "eval model.onnx", 2, "not a .tflite, .h5 or .keras"),
    case("zoo", "eval {out}/missing.tflite", 2, "no such model file"),
    case("zoo", "eval {empty} --name tinytracker", 2, "not a TFLite model"),
    case("zoo", "eval {text}", 2, "not a TFLite model"),
    case("zoo", "eval {random}", 2, "not a TFLite model"),
    case("zoo", "eval {truncated}", 2, "truncated or corrupt"),
    case("zoo", "eval {not_hdf5}", 2, "is not an HDF5"),
    case("zoo", "eval {dynamic} --name tinytracker --data {data}", 2, "has no fixed size"),
    case("zoo", "eval {three_channels} --name tinytracker --data {data}", 2, "is not a tinytracker model"),
    case("zoo", "eval {two_inputs} --name tinytracker --data {data}", 2, "has 2 inputs"),
    case("zoo", "eval {classifier} --name tinytracker --data {data}", 2, "not one gaze point"),
    case("zoo", "eval {valid}", 2, "say which registered model it is with --name"),
    case("zoo", "eval {valid} --name nosuchnet", 2, "unknown model 'nosuchnet'"),
    case("zoo", "eval {valid} --name tinytracker_s --data /nonexistent", 2, "no such folder"),
    case("zoo", "eval {valid} --split bogus", 2, "invalid choice: 'bogus'"),
    case("zoo", "eval {bad_manifest}/m_int8.tflite", 2, "not readable as JSON"),
    case("zoo", "eval {old_manifest}/m_int8.tflite", 2, "not a zoo.build record"),
    case("zoo", "eval {partial_manifest}/m_int8.tflite", 2, "lacks card"),
    case("zoo", "eval {valid} --name tinytracker_s --data {corrupt}", 2, "decodes as a JPEG"),
    case("zoo", "eval {other_h5} --name tinytracker --data {data}", 2, "give the model it is with --name"),
    case("zoo", "eval {custom_op} --name tinytracker_s --data {data}", 2,
         "has no kernel for one of its operators (Encountered unresolved custom op: NoSuchOp"),
    # the compiler adapters, up to their toolchains
    case("edgetpu", "", 2, "required: model"),
    case("edgetpu", "{out}/missing.tflite", 2, "no such file"),
    case("edgetpu", "{text}", 2, "not a TFLite model"),
    case("edgetpu", "{valid}", 2, "is a float model"),
    case("edgetpu", "{valid} --timeout 0", 2, "give a number of seconds above 0"),
    case("edgetpu", "{build}/m_int8.tflite -o {build} --preflight-only", 2,
         "holds {build}/m_int8.tflite, an input of compilers/edgetpu.py, which never writes there; write to "
         "{build}/edgetpu instead"),
    case("edgetpu", "{build}/m_int8.tflite -o {packaged} --overwrite", 2, "is a zoo build"),
    case("edgetpu", "{build}/m_int8.tflite -o {packaged}/imx500 --overwrite", 2,
         "is the output of compilers/imx500.py, which compilers/edgetpu.py never replaces; write to "
         "{build}/edgetpu instead"),
    case("imx500", "{out}/missing.tflite", 2, "no such file"),
    case("imx500", "{random}", 2, "not a TFLite model"),
    case("imx500", "{valid} --calibration-frames 0", 2, "must be at least 1"),
    case("imx500", "{valid} --face-grid 1,2", 2, "give COL,ROW,W,H"),
    case("imx500", "{valid} --keras {out}/missing.h5", 2, "no such Keras model file"),
    case("imx500", "", 2, "required: model"),
    case("imx500", "{valid} --method bogus", 2, "invalid choice"),
    case("imx500", "{build}/m_int8.tflite -o {build} --calibration-data {data} --recipe face_grid_grey", 2,
         "holds {build}/m_int8.tflite, an input of compilers/imx500.py, which never writes there; write to "
         "{build}/imx500 instead"),
    case("imx500", "{build}/m_int8.tflite -o {packaged} --calibration-data {data} --recipe face_grid_grey "
         "--overwrite", 2, "is a zoo build, which compilers/imx500.py never replaces"),
    case("imx500", "{build}/m_int8.tflite -o {packaged}/imx500 --calibration-data {data} --recipe "
         "face_grid_grey", 2, "holds compilers/imx500.py's output of other inputs (none); pass --overwrite"),
    case("ethosu", "", 2, "required: model"),
    case("ethosu", "{text}", 2, "not a TFLite model"),
    case("ethosu", "{valid}", 2, "is a float model"),
    case("ethosu", "{valid} --timeout nan", 2, "give a number of seconds above 0"),
    case("ethosu", "{build}/m_int8.tflite --accelerator bogus", 2, "does not know it"),
    case("ethosu", "{build}/m_int8.tflite -o {build}", 2,
         "holds {build}/m_int8.tflite, an input of compilers/ethosu.py, which never writes there; write to "
         "{build}/ethosu instead"),
    case("ethosu", "{build}/m_int8.tflite -o {packaged}/imx500 --overwrite", 2,
         "is the output of compilers/imx500.py, which compilers/ethosu.py never replaces"),
    case("mcu", "", 2, "required: model"),
    case("mcu", "{text}", 2, "not a TFLite model"),
    case("mcu", "{valid}", 2, "is a float model"),
    case("mcu", "{build}/m_int8.tflite --board nosuchboard --calibration-data {photos}", 2, "nosuchboard"),
    case("mcu", "{build}/m_int8.tflite -o {build} --calibration-data {photos}", 2,
         "holds {build}/m_int8.tflite, an input of compilers/mcu.py, which never writes there; write to "
         "{build}/mcu instead"),
    # benchmark apps
    case("latency", "", 2, "give one or more build folders"),
    case("latency", "--num_runs=-1 m.tflite", 2, "flag --num_runs=-1"),
    case("latency", "--runtimes=onnxruntime m.tflite", 2, "--runtimes must be"),
    case("latency", "--no_such_flag {valid}", 2, "Unknown command line flag 'no_such_flag'"),
    case("latency", "--data={data} {valid}", 2, "--data does not apply to benchmarks.latency"),
    case("latency", "--max_seconds=nan {valid}", 2, "--max_seconds=nan is not a finite number"),
    case("latency", "{out}/missing.tflite", 2, "no such .tflite file"),
    case("latency", "{text}", 2, "not a TFLite model"),
    case("latency", "--reference={text} {valid}", 2, "not a TFLite model"),
    case("latency", "{bad_manifest}", 2, "not readable as JSON"),
    case("latency", "{old_manifest}", 2, "not a zoo.build record"),
    case("latency", "{partial_manifest}", 2, "lacks card"),
    case("latency", "{missing_file}", 2, "but missing"),
    case("latency", "{custom_op} --runtimes=litert --num_runs=1 --warmup=0 --reference=", 1,
         "every row failed", lines=2),
    case("accuracy", "", 2, "give one or more build folders"),
    case("accuracy", "--frames=0 {build}", 2, "flag --frames=0"),
    case("accuracy", "{out}", 2, "not a build folder"),
    case("accuracy", "{bad_manifest}", 2, "not readable as JSON"),
    case("accuracy", "--data=/nonexistent {build}", 2, "no such folder"),
    case("accuracy", "{build} {bad_imx500}", 2, "not a zoo.imx500_report record"),
    case("accuracy", "--steps=5 {build}", 2, "--steps does not apply to benchmarks.accuracy"),
    case("compare", "--models=tinytracker,nosuchnet --data={data} --out={out}/c", 2,
         "--models must be registered models"),
    case("compare", "--data=/nonexistent --out={out}/c", 2, "no such folder"),
    case("compare", "--targets=gpu --out={out}/c", 2, "--targets must be"),
    case("compare", "--extra_models={out}/missing.tflite --out={out}/c", 2,
         "--extra_models must be existing"),
    case("compare", "--extra_models={text} --data={data} --out={out}/c", 2, "not a TFLite model"),
    case("compare", "--input_size=1 --out={out}/c", 2, "flag --input_size=1"),
    case("compare", "surprise --out={out}/c", 2, "unexpected arguments"),
    case("compare", "--out={text} --data={data}", 2, "is a file"),
    case("compare", "--report_only --out={out}/none", 2, "does not exist"),
    case("compare", "--report_only --out={bad_results}", 2, "not a readable results.json"),
    case("compare", "--report_only --out={partial_results}", 2, "not a complete results.json"),
    case("compare", "--report_only --out={bad_rows}", 2, "rows[0] lacks source, artifact"),
    case("compare", "--report_only --out={build}", 2,
         "is a zoo build, which benchmarks.compare never replaces"),
    case("compare", "--report_only --out={packaged}/imx500", 2, "is the output of compilers/imx500.py"),
    case("int8_speedup", "--layers=conv9x9", 2, "--layers must be"),
    case("int8_speedup", "--threads=0", 2, "flag --threads=0"),
    case("int8_speedup", "surprise", 2, "unexpected argument"),
    case("int8_speedup", "--out={users}", 2, "not written by this project"),
    case("int8_speedup", "--out={packaged} --overwrite", 2, "is a zoo build"),
    case("int8_speedup", "--overwrite", 2, "--overwrite is about the --out folder"),
    case("imx500_on_pi", "", 2, "--rpk must have a value"),
    case("imx500_on_pi", "--rpk=/nonexistent/network.rpk", 2, "--rpk must be an existing .rpk file"),
    case("imx500_on_pi", "--rpk={rpk} --results={bad_results}/results.json", 2,
         "not a readable results.json"),
    case("imx500_on_pi", "--rpk={rpk} --results={out}", 2, "is a folder"),
    case("imx500_on_pi", "--rpk={rpk} --results=/proc/zoo/r.json", 2, "cannot write in"),
    case("imx500_on_pi", "--rpk={rpk} --results={out}/r.json", 2, "picamera2 is not installed"),
    case("learnability", "--split=bogus", 2, "flag --split=bogus"),
    case("learnability", "--learning_rate=0", 2, "--learning_rate must be positive"),
    case("learnability", "--data=/nonexistent", 2, "no such folder"),
    case("learnability", "--model=nosuchnet --data={data}", 2, "unknown model 'nosuchnet'"),
    case("predict", "--scale_factor=nan {build}", 2, "--scale_factor=nan is not a finite number"),
    case("predict", "--scale_factor=inf {build}", 2, "--scale_factor=inf is not a finite number"),
    case("scale", "--sizes= --datasets={out}/s", 2, "--sizes is empty; give at least one value"),
    case("scale", "--sizes=0 --datasets={out}/s", 2, "give a multiple of it in that range"),
    case("scale", "--sizes=100000000 --datasets={out}/s", 2, "give a multiple of it in that range"),
    case("scale", "--datasets={text}", 2, "is a file; give a folder path"),
    case("scale", "--datasets={readonly}/s", 2, "cannot write there"),
    case("scale", "--datasets={build}", 2, "is a zoo build, which benchmarks.scale never replaces"),
    case("scale", "--sizes=2000,100000 --recording_frames=100 --datasets={full}/s", 2, "MB free"),
    case("scale", "--stage_root=x --datasets={out}/s", 2, "are for --stage, this app's own child processes"),
    case("scale", "--train_batch=100000000", 2, "flag --train_batch=100000000"),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_changes_nothing(case, inputs, tmp_path, capsys, request):
    paths = {**inputs, "out": tmp_path}
    if any(f"{{{mount}}}" in " ".join(case.argv) for mount in MOUNTS):
        paths.update(request.getfixturevalue("mounts"))
    argv = [arg.format(**paths) for arg in case.argv]
    watched = [inputs["root"], tmp_path] + [paths[m] for m in MOUNTS if m in paths]
    before = [tree(folder) for folder in watched]
    status = run_command(case.command, argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert status == case.status, err
    assert "Traceback" not in err and len(lines) == case.lines, err
    assert case.message.format(**paths) in (lines[-1] if case.lines else out), err or out
    assert [tree(folder) for folder in watched] == before


def test_there_are_at_least_40_cases_over_every_command():
    commands = {param.values[0].command for param in CASES}
    from compilers.targets import TARGETS
    apps = {"latency", "accuracy", "compare", "int8_speedup", "imx500_on_pi", "learnability", "predict",
            "scale"}
    assert len(CASES) >= 40 and commands == {"zoo", *TARGETS, *apps}


# ---- the guard ---------------------------------------------------------------------------------

def _raises(error):
    def raise_(*args, **kwargs):
        raise error
    return raise_


def test_an_unexpected_error_is_one_line_exit_1_and_debug_shows_the_traceback(inputs, monkeypatch, capsys):
    from zoo import data
    monkeypatch.setattr(data, "open_gazecapture", _raises(RuntimeError("an unexpected bug\nsecond line")))
    argv = ["data", "stats", str(inputs["data"])]
    assert run_command("zoo", argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("zoo: failed: RuntimeError: an unexpected bug; second line") and "--debug" in err
    assert run_command("zoo", argv + ["--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("ZOO_DEBUG", "1")
    assert run_command("zoo", argv) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("resumable", [True, False])
def test_ctrl_c_in_zoo_build_says_how_to_continue(inputs, tmp_path, monkeypatch, capsys, resumable):
    import zoo.train.build
    monkeypatch.setattr(zoo.train.build, "build", _raises(KeyboardInterrupt))
    if resumable:
        (tmp_path / "b.partial").mkdir()
        (tmp_path / "b.partial" / "state.json").write_text("{}")
    argv = ["build", "tinytracker_s", "--data", str(inputs["data"]), "--out", str(tmp_path / "b")]
    assert run_command("zoo", argv) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.strip() == (f"zoo: interrupted; continue it with: zoo {' '.join(argv)} --resume" if resumable
                           else "zoo: interrupted; nothing was kept; run the command again")


@pytest.mark.parametrize("error, status, line", [
    (RuntimeError("an unexpected bug"), 1, "failed: RuntimeError: an unexpected bug (run again with --debug"),
    (KeyboardInterrupt(), 130, "interrupted"),
    (RuntimeError, 1, "failed: RuntimeError:  (run again"),
])
def test_a_benchmark_apps_unexpected_error_and_ctrl_c_are_one_line(inputs, monkeypatch, capsys, error, status,
                                                                   line):
    from benchmarks import latency
    monkeypatch.setattr(latency, "cpu_rows", _raises(error))
    assert run_command("latency", [str(inputs["valid"])]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"benchmarks.latency: {line}"), err


def test_a_java_that_hangs_is_one_line_before_the_imx500_toolchain_starts(inputs, tmp_path, monkeypatch,
                                                                          capsys):
    from compilers.imx500 import tools as imx500_tools
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "java").write_text("#!/bin/sh\nsleep 60\n")
    (tmp_path / "bin" / "java").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setattr(imx500_tools, "JAVA_TIMEOUT_S", 1)
    out = tmp_path / "imx500"
    argv = [str(inputs["valid"]), "--calibration-data", str(inputs["data"]), "--recipe", "face_grid_grey",
            "-o", str(out)]
    assert run_command("imx500", argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did not answer within 1 s" in err, err
    assert not out.exists()


NO_TENSORFLOW = """
import sys
from zoo.cli import main
import benchmarks
from benchmarks import accuracy, latency
cases = [(main, ["build", "tinytracker_s", "--learning-rate", "0"]),
         (main, ["data", "stats", "/nonexistent"]),
         (main, ["eval", sys.argv[1], "--name", "tinytracker"]),
         (main, ["build", "tinytracker", "--data", "/x"]),
         (benchmarks.command(latency.main), ["latency", sys.argv[1]]),
         (benchmarks.command(accuracy.main), ["accuracy", "--data=/nonexistent", "x"])]
assert all(run(argv) == 2 for run, argv in cases)
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
"""


def test_bad_input_is_found_before_tensorflow_is_imported(inputs):
    """The one place a fresh process is what is tested: nothing before the checks imports TensorFlow."""
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, str(inputs["truncated"])], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stderr.strip().splitlines()) == 6, result.stderr
