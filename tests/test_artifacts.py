"""zoo.artifacts, the one reader and writer of records and output folders: typed records that
refuse damaged, partial or older files with one line, and publishing that replaces only what this
project wrote (issue: one artifact contract; reliability: never delete what it did not write)."""
import json

import pytest

from zoo import artifacts
from zoo.errors import UsageError


def _card():
    return artifacts.ModelCard(
        model="tinytracker", builder_args={"input_size": 32}, mode="qat", seed=0,
        inputs=[artifacts.InputRecord("face", [32, 32, 5], "face_grid_rgb", [-1.0, 1.0], "HWC", "int8", 0.0078, 0)],
        output=artifacts.OutputRecord("gaze", [2], 30.0, "cm = value * scale_cm"),
        data=artifacts.DataRecord("/data", "0123456789abcdef", None, {"train": 1, "val": 1, "test": 1}))


def test_a_record_round_trips_through_json(tmp_path):
    path = tmp_path / "card.json"
    artifacts.write_record(_card(), path)
    assert artifacts.read_record(artifacts.ModelCard, path) == _card()
    assert json.loads(path.read_text())["schema_version"] == artifacts.SCHEMA_VERSION


@pytest.mark.parametrize("damage, message", [
    (lambda v: v.pop("output"), "lacks output"),
    (lambda v: v["inputs"][0].update(shape="32x32"), "inputs[0].shape should be a list"),
    (lambda v: v.update(seed=True), "seed should be an integer"),
    (lambda v: v.update(schema_version=0), "schema version 0"),
    (lambda v: v.update(kind="zoo.train.build"), "not a zoo.model_card record"),
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


def _publish(out, files):
    work = artifacts.staging_folder(out)
    for name, text in files.items():
        (work / name).write_text(text)
    return artifacts.publish(work, out, "test")


def test_publish_replaces_only_what_this_project_wrote(tmp_path):
    out = artifacts.check_output(tmp_path / "out")
    _publish(out, {"model.tflite": "first", "report.json": "{}"})
    (out / "notes.txt").write_text("the user's")
    artifacts.check_output(out)  # ours: may be replaced
    _publish(out, {"model.tflite": "second"})
    assert (out / "model.tflite").read_text() == "second"
    assert not (out / "report.json").exists()  # ours, not made again
    assert (out / "notes.txt").read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder left


def test_a_folder_this_project_did_not_write_is_refused_or_kept(tmp_path):
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(UsageError, match="not written by this project"):
        artifacts.check_output(out)
    artifacts.check_output(out, overwrite=True)
    _publish(out, {"model.tflite": "new"})
    assert (out / "thesis.tex").read_text() == "years of work" and (out / "model.tflite").is_file()
    with pytest.raises(UsageError, match="thesis.tex, not written by this project"):
        _publish(out, {"thesis.tex": "clash"})
    assert (out / "thesis.tex").read_text() == "years of work"


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        artifacts.check_output(target)
