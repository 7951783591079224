"""What a hostile user hands every command (tests/test_bad_input.py's table, and the tests of
single commands that reuse it): tiny valid and broken TFLite files, builds and packages, photos
and videos that lie about themselves, data roots with damage, and the commands run in this
process."""
import contextlib
import hashlib
import importlib
import json
import os
import shutil
import subprocess

import numpy as np


FAKE_JPEG = b"\xff\xd8\xff" + bytes(200) + b"\xff\xd9"  # passes the marker check, does not decode


def tiny_tflite(path, inputs=(("face", (1, 8, 8, 3)),), output=(1, 2), custom_op=None, int8=False):
    """A small valid TFLite flatbuffer, written without TensorFlow: its inputs (name, shape with -1
    for a dynamic size) feed one FULLY_CONNECTED (or the custom operator ``custom_op``) with
    ``output``'s shape, so that every runtime loads and runs it; ``int8``: every tensor int8,
    quantized (what the compilers take)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    def tensor(name, shape, buffer=0, signature=None):
        made = schema.TensorT()
        made.name, made.shape, made.buffer = name.encode(), list(shape), buffer
        made.type = schema.TensorType.INT8 if int8 else schema.TensorType.FLOAT32
        made.shapeSignature = list(signature) if signature else None
        if int8:
            made.quantization = schema.QuantizationParametersT()
            made.quantization.scale, made.quantization.zeroPoint = [0.05], [0]
        return made

    model, code = schema.ModelT(), schema.OperatorCodeT()
    model.version, code.version = 3, 1
    code.builtinCode = code.deprecatedBuiltinCode = (
        schema.BuiltinOperator.CUSTOM if custom_op else schema.BuiltinOperator.FULLY_CONNECTED)
    code.customCode = custom_op.encode() if custom_op else None
    tensors = [tensor(name, [max(size, 1) for size in shape], signature=shape) for name, shape in inputs]
    first = [max(size, 1) for size in inputs[0][1]]
    weights = schema.BufferT()
    weight_shape = [int(np.prod(output[1:])), int(np.prod(first[1:]))]
    weights.data = (np.ones(weight_shape, np.int8) if int8 else np.full(weight_shape, 0.01, np.float32)
                    ).view(np.uint8).ravel()
    model.buffers = [schema.BufferT(), weights]
    tensors += [tensor("weights", weight_shape, buffer=1),
                tensor("gaze", output)]
    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, [0, len(inputs), -1], [len(tensors) - 1]
    if not custom_op:
        operator.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
        operator.builtinOptions = schema.FullyConnectedOptionsT()
    graph = schema.SubGraphT()
    graph.tensors, graph.operators = tensors, [operator]
    graph.inputs, graph.outputs = list(range(len(inputs))), [len(tensors) - 1]
    model.operatorCodes, model.subgraphs = [code], [graph]
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return path


def _manifest(data, files):
    """A valid manifest (zoo.artifacts.BuildManifest) of a tinytracker_s build on ``data``."""
    from zoo import artifacts
    face = artifacts.InputRecord("face", [8, 8, 3], "face_grid_grey", [-1.0, 1.0], "HWC", "float32", None,
                                 None)
    card = artifacts.ModelCard(
        model="tinytracker_s", builder_args={"input_size": 8}, mode="qat", seed=0, inputs=[face],
        output=artifacts.OutputRecord("gaze", [1, 2], 30.0, "cm / 30"),
        data=artifacts.DataRecord(str(data), "0" * 16, None, {"train": 1, "val": 1, "test": 1}))
    training = artifacts.TrainingRecord(epochs=1, qat_epochs=1, batch_size=4, steps_per_epoch_cap=1,
                                        steps_per_epoch=1, learning_rate=1e-3, qat_learning_rate=1e-5,
                                        lr_schedule="cosine", loss="mse", best_val_loss={})
    records = {kind: artifacts.FileRecord(path.name, path.stat().st_size, "0" * 64)
               for kind, path in files.items()}
    return artifacts.BuildManifest(card=card, params=1, macs=1, files=records, metrics={}, training=training,
                                   toolchain={}, command=["zoo"], seconds={})


def make_build(folder, data, manifest_text=None):
    """A build folder as `zoo build` publishes it (its marker included), holding a float and an
    int8 TFLite file and a manifest (``manifest_text`` or a valid one)."""
    from zoo import artifacts
    with artifacts.staged(folder, artifacts.Tool("zoo build", "build"), [data]) as work:
        files = {"float_tflite": tiny_tflite(work / "m_float.tflite"),
                 "int8_tflite": tiny_tflite(work / "m_int8.tflite", int8=True)}
        if manifest_text is None:
            artifacts.write_record(_manifest(data, files), work / artifacts.MANIFEST)
        else:
            (work / artifacts.MANIFEST).write_text(manifest_text)
    return folder


def _package(folder):
    """An IMX500 package as compilers/imx500.py publishes it (what matters here: its marker)."""
    from zoo import artifacts
    with artifacts.staged(folder, artifacts.Tool("compilers/imx500.py", "imx500", "-o")) as work:
        (work / "report.json").write_text("{}")
        (work / "packerOut.zip").write_bytes(b"PK\x05\x06" + bytes(18))
        (work / "network.rpk").write_bytes(b"an IMX500 network package")
    return folder


def huge_jpeg(jpeg):
    """``jpeg`` (bytes) with its frame header claiming 65535 x 65535 pixels."""
    at = jpeg.index(b"\xff\xc0") + 5  # SOF0: marker, length (2), precision, then height and width
    return jpeg[:at] + b"\xff\xff\xff\xff" + jpeg[at + 4:]


def _media(root):
    """{name: path} of photos and videos: a plain photo (no face), a PNG and a JPEG whose headers
    claim too many pixels, an MJPG video of 60 frames cut in half and one damaged in the middle."""
    import struct
    import zlib

    import cv2
    photos = root / "photos"
    photos.mkdir()
    paths = {"photos": photos, "photo": photos / "noise.png"}
    cv2.imwrite(str(paths["photo"]), np.random.default_rng(0).integers(0, 255, (400, 400, 3), np.uint8))
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    paths["huge"] = root / "huge.png"
    paths["huge"].write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + header
                              + struct.pack(">I", zlib.crc32(b"IHDR" + header)))
    paths["huge_jpeg"] = root / "huge.jpg"
    small = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    paths["huge_jpeg"].write_bytes(huge_jpeg(small))
    paths["cut"], paths["damaged"] = root / "cut.avi", root / "damaged.avi"
    writer = cv2.VideoWriter(str(paths["cut"]), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for frame in range(60):
        writer.write(np.full((48, 64, 3), frame * 4, np.uint8))
    writer.release()
    whole = paths["cut"].read_bytes()
    paths["cut"].write_bytes(whole[:len(whole) // 2])
    third = len(whole) // 3
    paths["damaged"].write_bytes(whole[:third] + b"\x55" * 2000 + whole[third + 2000:])
    return paths


def _other_keras_model(path):
    """A Keras .h5 of a model that is not the zoo's tinytracker, though named so."""
    import tensorflow as tf
    image = tf.keras.Input((16, 16, 3), name="image")
    scores = tf.keras.layers.Dense(10)(tf.keras.layers.Flatten()(image))
    model = tf.keras.Model(image, scores, name="tinytracker")
    model.save(path)
    return path


def _datasets(root):
    """{name: path} of a tiny rendered dataset and of broken copies of it."""
    from zoo import data
    paths = {"data": root / "data"}
    data.render_dataset(paths["data"], subjects=3, frames=6, seed=1, progress=False)
    paths["corrupt"] = shutil.copytree(paths["data"], root / "corrupt")
    for jpeg in paths["corrupt"].glob("*/frames/*.jpg"):
        jpeg.write_bytes(FAKE_JPEG)
    paths["deep"] = shutil.copytree(paths["data"], root / "deep")
    first = sorted(p for p in paths["deep"].iterdir() if p.is_dir())[0]
    (first / "frames.json").write_text("[" * 100_000 + "]" * 100_000)
    paths["recording"] = sorted(p for p in paths["data"].iterdir() if p.is_dir())[0]
    paths["huge_frame"] = shutil.copytree(paths["data"], root / "huge_frame")
    frame = sorted(paths["huge_frame"].glob("*/frames/*.jpg"))[0]
    frame.write_bytes(huge_jpeg(frame.read_bytes()))
    return paths


def _results(root):
    """{name: folder} of results.json files benchmarks.compare did not write (or not completely)."""
    paths = {}
    for name, text in (("bad_results", '{"schema": 1, "rows": ['),
                       ("partial_results", '{"schema": 1, "rows": []}'),
                       ("bad_rows", '{"schema": 1, "rows": [{"model": "x"}]}')):
        paths[name] = root / name
        paths[name].mkdir()
        (paths[name] / "results.json").write_text(text)
    return paths


def make_inputs(root):
    """Every bad (and a few good) input the cases refer to, made in ``root``, as {placeholder: path}."""
    paths = {"root": root, **_datasets(root), **_results(root)}
    (root / "users").mkdir()
    (root / "users" / "thesis.txt").write_text("a user's file that no command may touch")
    paths["users"] = root / "users"
    for name, content in (("text", b"just some text, long enough to hold a header"), ("empty", b""),
                          ("random", np.random.default_rng(0).bytes(4000))):
        paths[name] = root / f"{name}.tflite"
        paths[name].write_bytes(content)
    (root / "plain").mkdir()
    paths["valid"] = tiny_tflite(root / "plain" / "gaze.tflite")
    paths["truncated"] = root / "truncated.tflite"
    paths["truncated"].write_bytes(paths["valid"].read_bytes()[:300])
    for name, kwargs in (("dynamic", dict(inputs=(("face", (1, -1, -1, 5)),))),
                         ("three_channels", dict(inputs=(("face", (1, 8, 8, 3)),))),
                         ("two_inputs", dict(inputs=(("face", (1, 8, 8, 5)), ("extra", (1, 4))))),
                         ("classifier", dict(inputs=(("face", (1, 8, 8, 5)),), output=(1, 1001))),
                         ("custom_op", dict(custom_op="NoSuchOp"))):
        paths[name] = tiny_tflite(root / "plain" / f"{name}.tflite", **kwargs)
    paths["not_hdf5"] = root / "weights.h5"
    paths["not_hdf5"].write_text("not weights")
    paths["rpk"] = root / "network.rpk"
    paths["rpk"].write_bytes(b"an IMX500 network package")
    paths["build"] = make_build(root / "build", paths["data"])
    paths["packaged"] = shutil.copytree(paths["build"], root / "packaged")
    _package(paths["packaged"] / "imx500")
    paths.update(_media(root))
    paths["other_h5"] = _other_keras_model(root / "other.h5")
    for name, text in (("bad_manifest", '{"kind": "zoo.bu'),
                       ("old_manifest", json.dumps({"model": "tinytracker_s", "mode": "qat", "files": {}})),
                       ("partial_manifest", json.dumps({"kind": "zoo.build", "schema_version": 1}))):
        paths[name] = make_build(root / name, paths["data"], text)
    paths["missing_file"] = shutil.copytree(paths["build"], root / "missing_file")
    (paths["missing_file"] / "m_int8.tflite").unlink()
    paths["bad_imx500"] = shutil.copytree(paths["build"], root / "bad_imx500")
    (paths["bad_imx500"] / "imx500").mkdir()
    (paths["bad_imx500"] / "imx500" / "report.json").write_text("{}")
    return paths


def run_command(command, argv):
    """The exit status of ``command`` run in this process on ``argv``."""
    try:
        if command == "zoo":
            from zoo.cli import main
            return main(argv)
        from compilers.targets import TARGETS
        if command in TARGETS:
            return TARGETS[command].module().main(argv)
        import benchmarks
        return benchmarks.command(importlib.import_module(f"benchmarks.{command}").main)([command, *argv])
    except SystemExit as exit:
        return exit.code


def tree(folder):
    """{relative path: sha256 of a file, or "dir"} of everything under ``folder``."""
    return {str(path.relative_to(folder)):
            "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))}


MOUNTS = {"full": "size=64k", "readonly": "ro,size=64k", "filled": "size=16k"}


@contextlib.contextmanager
def tmpfs_mounts(root):
    """{"full": a 64 KiB tmpfs, "readonly": a read-only one, "filled": a 16 KiB one with no byte
    free} under ``root``, unmounted at the end; mount's error text instead where it is refused."""
    made, refused = {}, None
    for name, options in MOUNTS.items():
        (root / name).mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(root / name)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            refused = result.stderr.strip()
            break
        made[name] = root / name
    try:
        if refused is None:
            filler = os.open(made["filled"] / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(filler, bytes(1024))
            except OSError:  # full
                os.close(filler)
        yield made if refused is None else refused
    finally:
        for path in made.values():
            subprocess.run(["umount", str(path)], check=True)
