"""zoo.artifacts, the one reader and writer of records and the one publisher of
output folders: typed records that refuse damaged, partial or older files with one line, and
publishing that replaces only what the same command wrote (issue #23: never a build, a package,
another command's output or a folder holding an input)."""
import errno
import json
import os

import pytest

from zoo import artifacts
from zoo.errors import UsageError


def _card():
    return artifacts.ModelCard(
        model="tinytracker", builder_args={"input_size": 32}, mode="qat", seed=0,
        inputs=[artifacts.InputRecord("face", [32, 32, 5], "face_grid_rgb", [-1.0, 1.0], "HWC", "int8",
                                      0.0078, 0)],
        output=artifacts.OutputRecord("gaze", [2], 30.0, "cm = value * scale_cm"),
        data=artifacts.DataRecord("/data", "0123456789abcdef", None, {"train": 1, "val": 1, "test": 1}))


def test_a_record_round_trips_through_json(tmp_path):
    path = tmp_path / "card.json"
    artifacts.write_record(_card(), path)
    assert artifacts.read_record(artifacts.ModelCard, path) == _card()
    assert json.loads(path.read_text())["schema_version"] == artifacts.ModelCard.SCHEMA_VERSION == 2


def test_the_previous_card_version_still_reads(tmp_path):
    """Version 1 had no box_maps: it reads with them None; a version from the future does not."""
    value = artifacts.to_json(_card())
    del value["box_maps"]
    path = tmp_path / "card.json"
    path.write_text(json.dumps({**value, "schema_version": 1}))
    assert artifacts.read_record(artifacts.ModelCard, path) == _card()
    path.write_text(json.dumps({**value, "schema_version": 3}))
    with pytest.raises(UsageError, match="written with schema version 3, this zoo reads 2; make it again"):
        artifacts.read_record(artifacts.ModelCard, path)


def _manifest():
    training = artifacts.TrainingRecord(epochs=1, qat_epochs=1, batch_size=4, steps_per_epoch_cap=1,
                                        steps_per_epoch=1, learning_rate=1e-3, qat_learning_rate=1e-5,
                                        lr_schedule="cosine", loss="mse", best_val_loss={})
    metrics = {"int8_tflite": artifacts.GazeErrors(cm=3.5, cm_phone=3.0, cm_tablet=None, frames=12),
               "mean_baseline": artifacts.GazeErrors(cm=4.0, cm_phone=4.0, cm_tablet=None, frames=12)}
    return artifacts.BuildManifest(card=_card(), params=1, macs=1, files={}, metrics=metrics,
                                   training=training, toolchain={}, command=["zoo"], seconds={})


@pytest.mark.parametrize("version", [1, 2])
def test_a_manifest_of_the_previous_versions_reads_with_typed_metrics(tmp_path, version):
    """Versions 1 and 2 held gaze_errors' dicts (a version-1 card no box_maps): they read as
    GazeErrors records; a metric missing a field is one line, not a KeyError later."""
    value = artifacts.to_json(_manifest())
    assert value["schema_version"] == artifacts.BuildManifest.SCHEMA_VERSION == 3
    value["card"].pop("box_maps")
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({**value, "schema_version": version}))
    manifest = artifacts.read_record(artifacts.BuildManifest, path)
    assert manifest == _manifest() and manifest.metrics["int8_tflite"].cm == 3.5
    del value["metrics"]["mean_baseline"]["frames"]
    path.write_text(json.dumps({**value, "schema_version": version}))
    with pytest.raises(UsageError, match="metrics.mean_baseline lacks frames; the file is damaged"):
        artifacts.read_record(artifacts.BuildManifest, path)


@pytest.mark.parametrize("damage, message", [
    (lambda v: v.pop("output"), "lacks output"),
    (lambda v: v["inputs"][0].update(shape="32x32"), "inputs[0].shape should be a list"),
    (lambda v: v.update(seed=True), "seed should be an integer"),
    (lambda v: v.update(schema_version=0), "schema version 0"),
    (lambda v: v.update(kind="zoo.build"), "not a zoo.model_card record"),
])
def test_a_damaged_or_older_record_is_one_clear_line(tmp_path, damage, message):
    value = artifacts.to_json(_card())
    damage(value)
    path = tmp_path / "card.json"
    path.write_text(json.dumps(value))
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        artifacts.read_record(artifacts.ModelCard, path)


@pytest.mark.parametrize("text", ["", "{", "[" * 100000, "NaN", "not json"])
def test_unreadable_json_is_one_clear_line(tmp_path, text):
    path = tmp_path / "manifest.json"
    path.write_text(text)
    with pytest.raises(UsageError, match="manifest.json"):
        artifacts.read_record(artifacts.BuildManifest, path)


def test_the_model_card_travels_inside_a_tflite_file(tmp_path):
    from zoo.tflite import with_metadata
    reference = tmp_path / "model.tflite"
    import tensorflow as tf
    inputs = tf.keras.Input((4,))
    reference.write_bytes(tf.lite.TFLiteConverter.from_keras_model(
        tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))).convert())
    assert artifacts.read_model_card(reference) is None
    carded = tmp_path / "carded.tflite"
    carded.write_bytes(with_metadata(reference.read_bytes(), artifacts.MODEL_CARD_METADATA,
                                     artifacts.card_bytes(_card())))
    assert artifacts.read_model_card(carded) == _card()
    from zoo.tflite import make_interpreter, run_tflite
    import numpy as np
    batch = np.ones((1, 4), np.float32)
    assert np.array_equal(run_tflite(make_interpreter(reference), {"x": batch}),
                          run_tflite(make_interpreter(carded), {"x": batch}))


TOOL = artifacts.Tool("zoo test", "test")
OTHER = artifacts.Tool("zoo other", "other")


def _publish(out, files, tool=TOOL, inputs=(), overwrite=False):
    with artifacts.staged(out, tool, inputs, overwrite) as work:
        for name, text in files.items():
            (work / name).write_text(text)
    return out


def test_publish_replaces_only_what_this_command_wrote(tmp_path):
    out = artifacts.check_output(tmp_path / "out", TOOL)
    _publish(out, {"model.tflite": "first", "report.json": "{}"})
    (out / "notes.txt").write_text("the user's")
    artifacts.check_output(out, TOOL)  # its own: may be replaced
    _publish(out, {"model.tflite": "second"})
    assert (out / "model.tflite").read_text() == "second"
    assert not (out / "report.json").exists()  # its own, not made again
    assert (out / "notes.txt").read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder left
    marker = artifacts.read_marker(out)
    assert (marker.tool, marker.inputs, marker.entries) == ("zoo test", [], ["model.tflite"])


def test_a_folder_this_project_did_not_write_is_refused_or_kept(tmp_path):
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(UsageError, match="not written by this project.*pass --overwrite"):
        artifacts.check_output(out, TOOL)
    artifacts.check_output(out, TOOL, overwrite=True)
    _publish(out, {"model.tflite": "new"}, overwrite=True)
    assert (out / "thesis.tex").read_text() == "years of work" and (out / "model.tflite").is_file()
    with pytest.raises(UsageError, match="thesis.tex, not written by zoo test"):
        _publish(out, {"thesis.tex": "clash"})
    assert (out / "thesis.tex").read_text() == "years of work"


def _build(folder):
    """A folder as `zoo build` leaves it: a manifest and a model, with its marker."""
    with artifacts.staged(folder, artifacts.Tool("zoo build", "build")) as work:
        (work / artifacts.MANIFEST).write_text("{}")
        (work / "model.tflite").write_text("the model")
    return folder


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_build_a_package_and_another_commands_output_are_never_replaced(tmp_path, overwrite):
    build = _build(tmp_path / "build")
    other = _publish(build / "other", {"report.json": "{}"}, OTHER)
    package = tmp_path / "package"  # a package copied without its marker
    package.mkdir()
    (package / "network.rpk").write_text("rpk")
    before = _tree(tmp_path)
    for folder, what, instead in ((build, "is a zoo build", build / "test"),
                                  (other, "is the output of zoo other", build / "test"),
                                  (package, "is a compiler's package", package / "test")):
        refusal = f"{what}, which zoo test never replaces; write to {instead} instead"
        with pytest.raises(UsageError, match=refusal):
            artifacts.check_output(folder, TOOL, overwrite=overwrite)
        with pytest.raises(UsageError, match=what):
            _publish(folder, {"x": "y"}, overwrite=overwrite)  # the rule holds in publish too
    assert _tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["build", "package"]


def test_a_folder_holding_an_input_is_never_written(tmp_path):
    build = _build(tmp_path / "build")
    with pytest.raises(UsageError, match=f"holds {build / 'model.tflite'}, an input of zoo test, which never "
                       f"writes there; write to {build / 'test'} instead"):
        artifacts.check_output(build, TOOL, [build / "model.tflite"], overwrite=True)
    with pytest.raises(UsageError, match=f"holds {build}, an input"):  # the input folder itself, or above it
        artifacts.check_output(tmp_path, TOOL, [build], overwrite=True)
    with pytest.raises(UsageError, match="write to .*elsewhere instead"):
        artifacts.check_output(build, TOOL, [build / "model.tflite"], default=tmp_path / "elsewhere")
    assert artifacts.check_output(build / "test", TOOL, [build]) == build / "test"  # inside an input: fine


def test_other_inputs_need_overwrite(tmp_path):
    first, second = tmp_path / "a.jpg", tmp_path / "b.jpg"
    out = _publish(tmp_path / "out", {"a.png": "a"}, inputs=[first])
    artifacts.check_output(out, TOOL, [first])
    with pytest.raises(UsageError, match=r"holds zoo test's output of other inputs \(a.jpg\); pass --over"):
        artifacts.check_output(out, TOOL, [second])
    _publish(out, {"b.png": "b"}, inputs=[second], overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [artifacts.MARKER, "b.png"]
    assert artifacts.read_marker(out).inputs == [str(second.resolve())]


def test_a_marker_of_the_first_format_is_read(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.tflite").write_text("old")
    (out / artifacts.MARKER).write_text(json.dumps({"tool": "zoo test", "schema_version": 1,
                                                    "entries": ["old.tflite"]}))
    assert artifacts.read_marker(out) == artifacts.OutputMarker("zoo test", None, ["old.tflite"])
    _publish(out, {"new.tflite": "new"}, inputs=[tmp_path / "x"])  # inputs unknown: its own, replaced
    assert sorted(p.name for p in out.iterdir()) == [artifacts.MARKER, "new.tflite"]
    (out / artifacts.MARKER).write_text("{damaged")
    assert artifacts.read_marker(out) is None
    with pytest.raises(UsageError, match="not written by this project"):
        artifacts.check_output(out, TOOL)


def test_a_full_disk_says_how_much_was_written_and_leaves_nothing(tmp_path, monkeypatch):
    def write(work):
        (work / "a.bin").write_bytes(bytes(3000))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(artifacts.WriteFailed, match="needs more than the 2.9 KiB written before it ran out; "
                       "nothing was kept: free more space there or choose another --out") as error:
        with artifacts.staged(tmp_path / "out", TOOL) as work:
            write(work)
    assert error.value.errno == errno.ENOSPC and not list(tmp_path.iterdir())


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        artifacts.check_output(target, TOOL)
