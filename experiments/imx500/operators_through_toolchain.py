"""BUILD_NOTES ("Operators"): which operators, written as the importer writes them in Keras, MCT
PTQ (IMX500 TPC v5.0) and imxconv-tf take: one small model per operator (a convolution, then the
operator), quantized, exported and converted; one JSON line per model, results.json in OUT.
Run it without tfmot in the process (MCT needs the `keras` package).

    python experiments/imx500/operators_through_toolchain.py OUT [NAME ...]   (default: all)
"""
import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

L = tf.keras.layers


def _conv(y, channels=8):
    return L.Conv2D(channels, 1)(y)


def _l2norm(y):
    squares = tf.math.reduce_sum(y * y, axis=-1, keepdims=True)
    return y * tf.math.rsqrt(L.ReLU()(squares - 1e-6) + 1e-6)


def _squared_difference(y):
    difference = L.Subtract()([y, _conv(y)])
    return L.Multiply()([difference, difference])


OPERATORS = {
    "strided_slice": lambda y: tf.strided_slice(y, [0, 1, 0, 0], [0, 13, 16, 6], [1, 2, 1, 1],
                                                begin_mask=1, end_mask=1),
    "split": lambda y: list(tf.split(y, 2, axis=-1)),
    "split_v": lambda y: list(tf.split(y, [3, 5], axis=-1)),
    "gather": lambda y: tf.gather(y, [3, 1, 2], axis=-1),
    "permute": lambda y: L.Permute((2, 1, 3))(y),
    "transpose": lambda y: tf.transpose(y, [0, 2, 1, 3]),
    "pack": lambda y: tf.stack([y, _conv(y)], axis=3),
    "unpack": lambda y: list(tf.unstack(L.Reshape((16, 16, 2, 4))(y), axis=3)),
    "l2norm": _l2norm,
    "sum": lambda y: tf.math.reduce_sum(y, axis=[1, 2], keepdims=True),
    "reduce_max": lambda y: tf.math.reduce_max(y, axis=-1, keepdims=True),
    "maximum": lambda y: L.Maximum()([y, _conv(y)]),
    "minimum": lambda y: L.Minimum()([y, _conv(y)]),
    "max_const": lambda y: L.ReLU()(y - 0.5) + 0.5,
    "squared_difference": _squared_difference,
    "rsqrt": lambda y: tf.math.rsqrt(L.ReLU()(y) + 1.0),
    "div": lambda y: tf.math.truediv(y, L.ReLU()(_conv(y)) + 1.0),
    "argmax": lambda y: tf.math.argmax(y, axis=-1),
    "argmax_mid": lambda y: _conv(L.Reshape((16, 16, 1))(tf.cast(tf.math.argmax(y, axis=-1), tf.float32)), 4),
    "squeeze": lambda y: L.Reshape((16 * 16 * 8,))(y),
    "tf_squeeze": lambda y: tf.squeeze(L.GlobalAveragePooling2D(keepdims=True)(y), axis=[1, 2]),
    "resize_v1": lambda y: tf.compat.v1.image.resize(y, (32, 32), method="bilinear", align_corners=True),
    "tf_pad": lambda y: tf.pad(y, [[0, 0], [0, 0], [0, 0], [0, 2]]),
}


def _through_toolchain(name, out, tpc):
    """{"stage", "ok", ...}: MCT's exception, or imxconv-tf's exit status and error lines."""
    import model_compression_toolkit as mct
    tf.keras.utils.set_random_seed(0)
    image = tf.keras.Input((16, 16, 8), name="image")
    model = tf.keras.Model(image, OPERATORS[name](L.Conv2D(8, 3, padding="same")(image)))
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(2):
            yield [rng.uniform(-1, 1, (8, 16, 16, 8)).astype(np.float32)]
    try:
        quantized, _ = mct.ptq.keras_post_training_quantization(model, representative,
                                                                target_platform_capabilities=tpc)
        path = out / f"{name}.keras"
        mct.exporter.keras_export_model(model=quantized, save_model_path=str(path))
    except Exception as error:  # MCT's refusal is the finding
        return {"stage": "mct", "ok": False, "error": f"{type(error).__name__}: {error}"[:800]}
    converter = pathlib.Path(sys.executable).parent / "imxconv-tf"
    result = subprocess.run([str(converter), "-i", str(path), "-o", str(out / f"{name}_out")],
                            capture_output=True, text=True, timeout=1200)
    errors = [line for line in (result.stdout + result.stderr).splitlines()
              if "rror" in line or "nsupported" in line]
    ok = result.returncode == 0 and (out / f"{name}_out" / "packerOut.zip").is_file()
    return {"stage": "imxconv", "ok": ok, "rc": result.returncode, "errors": errors[:6]}


def main(out, names):
    from edgemdt_tpc import get_target_platform_capabilities
    tpc = get_target_platform_capabilities(tpc_version="5.0", device_type="imx500")
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in names or OPERATORS:
        started = time.monotonic()
        results[name] = _through_toolchain(name, out, tpc)
        results[name]["seconds"] = round(time.monotonic() - started, 1)
        print(name, json.dumps(results[name]), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), sys.argv[2:])
