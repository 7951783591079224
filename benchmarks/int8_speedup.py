"""Does int8 pay on this CPU? Times one-layer models of the kinds a MobileNet is made of, float and
int8, and prints how much faster int8 runs for each.

  python -m benchmarks.int8_speedup                      # LiteRT, one thread
  python -m benchmarks.int8_speedup --out=runs/int8_speedup --runtimes=litert,tflite_runtime

A whole model can gain from int8 no more than its layers do, so this bounds the speed-up any int8
build can show over its float TFLite here. XNNPACK's int8 kernels gain most where the CPU has
8-bit dot-product instructions (AVX-VNNI, AVX512-VNNI, Arm dotprod); the first line names those
this CPU reports. The files are kept in --out, so that `python -m benchmarks.latency OUT/*.tflite`
can time the same layers on another machine without TensorFlow: they are made and timed in a
temporary folder, which becomes --out (checked first) only when complete.
"""
import json
import pathlib
import tempfile

import numpy as np
from absl import flags

import benchmarks
from benchmarks import CPU, FLOAT, MEASURED, PTQ_INT8, latency
from zoo import artifacts
from zoo.errors import UsageError

# name -> (input shape, Keras layer); sizes chosen so that each float layer takes 0.05-1 ms here.
LAYERS = {
    "conv1x1_256_28x28": ((28, 28, 256), lambda layers: layers.Conv2D(256, 1)),
    "conv3x3_32_56x56": ((56, 56, 32), lambda layers: layers.Conv2D(32, 3, padding="same")),
    "depthwise3x3_96_28x28": ((28, 28, 96), lambda layers: layers.DepthwiseConv2D(3, padding="same")),
    "dense_1024": ((1024,), lambda layers: layers.Dense(1024)),
}
DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")  # /proc/cpuinfo names

flags.DEFINE_list("layers", list(LAYERS), f"layers to time, any of {', '.join(LAYERS)}")
flags.register_validator("layers", lambda names: bool(names) and set(names) <= set(LAYERS),
                         f"--layers must be a comma-separated subset of {', '.join(LAYERS)}")
for _name in ("out", "overwrite", "runtimes", "threads", "warmup", "num_runs", "max_seconds", "json"):
    flags.declare_key_flag(_name)
FLAGS = flags.FLAGS
TOOL = artifacts.Tool("benchmarks.int8_speedup", "int8_speedup")  # what it writes


def dot_product_instructions():
    """The 8-bit dot-product instruction sets the CPU reports (Linux only; () elsewhere)."""
    try:
        words = set(pathlib.Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return ()
    return tuple(name for name in DOT_PRODUCT_FLAGS if name in words)


def write_layer_models(names, folder):
    """NAME_float.tflite and NAME_int8.tflite (full int8, int8 in and out) for each layer."""
    import tensorflow as tf

    from zoo.models.facts import count_macs

    rng = np.random.default_rng(0)
    layer_models = []
    for name in names:
        shape, make = LAYERS[name]
        inputs = tf.keras.Input(shape)
        model = tf.keras.Model(inputs, make(tf.keras.layers)(inputs))
        macs = count_macs(model)
        samples = rng.uniform(-1, 1, (8, 1, *shape)).astype(np.float32)
        for artifact, int8 in ((FLOAT, False), (PTQ_INT8, True)):
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
            if int8:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = lambda: ([sample] for sample in samples)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = converter.inference_output_type = tf.int8
            path = folder / f"{name}_{'int8' if int8 else 'float'}.tflite"
            path.write_bytes(converter.convert())
            layer_models.append(benchmarks.Artifact(name, artifact, path, model.count_params(), macs))
        benchmarks.progress("int8_speedup", f"wrote {name} float and int8 ({macs / 1e6:.1f}M MACs)")
    return layer_models


def speedup_rows(rows):
    """One row per layer and runtime: float ms, int8 ms and float / int8."""
    timed = {(row["model"], row["runtime"], row["artifact"]): row for row in rows
             if row["status"] == MEASURED}
    result = []
    for (layer, runtime, artifact), float_row in timed.items():
        int8_row = timed.get((layer, runtime, PTQ_INT8))
        if artifact != FLOAT or int8_row is None:
            continue
        float_ms, int8_ms = float_row["latency_ms_median"], int8_row["latency_ms_median"]
        result.append({"layer": layer, "runtime": runtime, "threads": float_row["threads"],
                       "macs": float_row["macs"], "float_ms": float_ms, "int8_ms": int8_ms,
                       "speedup": float_ms / int8_ms})
    return result


def _table(speedups):
    lines = ["| layer | runtime | threads | MACs | float ms | int8 ms | float / int8 |",
             "|" + " --- |" * 7]
    lines += [f"| {s['layer']} | {s['runtime']} | {s['threads']} | {s['macs'] / 1e6:.1f}M | "
              f"{s['float_ms']:.3f} | {s['int8_ms']:.3f} | {s['speedup']:.2f}x |" for s in speedups]
    return "\n".join(lines)


def _time_layers(folder):
    """The latency rows of the one-layer models, written into ``folder`` and timed there."""
    layer_models = write_layer_models(FLAGS.layers, folder)
    return latency.cpu_rows(layer_models, FLAGS.runtimes, latency.Timing.from_flags(),
                            app_name="int8_speedup")


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected argument {argv[1]!r}; this app takes flags only")
    out = FLAGS.out and artifacts.check_output(FLAGS.out, TOOL, (), FLAGS.overwrite)
    instructions = dot_product_instructions()
    benchmarks.progress("int8_speedup", "8-bit dot-product instructions: "
                        + (", ".join(instructions) if instructions else "none reported"))
    if out:
        with artifacts.staged(out, TOOL, (), FLAGS.overwrite) as work:
            rows = _time_layers(work)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            rows = _time_layers(pathlib.Path(scratch))
    speedups = speedup_rows(rows)
    if FLAGS.json:
        print(json.dumps([{**s, "target": CPU, "dot_product_instructions": list(instructions)}
                          for s in speedups], indent=1), flush=True)
    else:
        print(_table(speedups), flush=True)


if __name__ == "__main__":
    benchmarks.run(main)
