"""The IMX500's own latency, measured on a Raspberry Pi with the AI Camera.

  python -m benchmarks.imx500_on_pi --rpk=network.rpk --name=tinytracker --results=results.json

Loads the network (network.rpk, packaged on the Pi with `imx500-package` from the packerOut.zip of
compilers/imx500.py) through picamera2 and records, per frame, the sensor's own DNN and DSP
runtimes (IMX500.get_kpi_info) and the camera's frame rate. The median and p90 become one row in
the results format of benchmarks.compare, merged into --results (a copy of the comparison's
results.json: the row replaces its "not measured" IMX500 row); re-render the table with
`python -m benchmarks.compare --report_only --out=FOLDER`. Needs picamera2 and the imx500 firmware
(`sudo apt install imx500-all python3-picamera2`); nothing runs on another machine. On the Pi, run
it from a checkout of this repository with the system Python plus absl-py (`pip install absl-py`):
it imports no TensorFlow, only numpy and absl-py beyond the checkout.
"""
import os
import pathlib

import numpy as np
from absl import flags

import benchmarks
from benchmarks import IMX500, MCT_INT8, MEASURED, ON_SENSOR
from benchmarks.results import merge_rows, read_results, row_record, write_results
from zoo.errors import UsageError

RECORD_FRAMES = 300  # --frames' default here

# Not required=True: absl checks a required flag whichever app parses, and the apps share one set.
flags.DEFINE_string("rpk", None, "the network.rpk to load onto the IMX500 (required)")
flags.DEFINE_string("name", None, "model name for the row (default: the build folder the .rpk "
                    "is in, BUILD/imx500/network.rpk -> BUILD's name)")
flags.DEFINE_integer("skip_frames", 30, "frames to drop first, while the network starts", lower_bound=0)
flags.DEFINE_float("frame_rate", 30.0, "camera frame rate to request", lower_bound=0.1)
flags.DEFINE_string("results", "results.json", "results.json to merge the row into (made if absent)")
flags.register_validator("rpk", lambda path: path is None or pathlib.Path(path).is_file(),
                         "--rpk must be an existing .rpk file")
for _name in ("frames", "json"):
    flags.declare_key_flag(_name)
FLAGS = flags.FLAGS


def _camera():
    """picamera2's (Picamera2, IMX500) classes; a clear error where picamera2 is absent."""
    try:
        from picamera2 import Picamera2
        from picamera2.devices import IMX500 as Imx500Device
    except ImportError:
        raise UsageError("picamera2 is not installed: run this on a Raspberry Pi with the AI Camera "
                         "(sudo apt install imx500-all python3-picamera2)") from None
    return Picamera2, Imx500Device


def record_kpis(rpk, frames, skip_frames, frame_rate):
    """[(dnn ms, dsp ms, sensor timestamp ns)] of ``frames`` frames that carried KPI info."""
    picamera2_class, device_class = _camera()
    benchmarks.progress("imx500_on_pi", f"loading {rpk} onto the sensor (the first load takes minutes)")
    device = device_class(str(rpk))
    camera = picamera2_class(device.camera_num)
    camera.start(camera.create_preview_configuration(controls={"FrameRate": frame_rate},
                                                     buffer_count=12))
    samples, seen = [], 0
    try:
        while len(samples) < frames:
            metadata = camera.capture_metadata()
            seen += 1
            kpi = device.get_kpi_info(metadata)
            if seen > skip_frames and kpi is not None:
                samples.append((kpi[0], kpi[1], metadata.get("SensorTimestamp")))
                if len(samples) % 50 == 0:
                    benchmarks.progress("imx500_on_pi", f"{len(samples)}/{frames} frames")
            if seen > skip_frames + 10 * frames:
                raise benchmarks.Failure(f"the sensor reported KPI info on {len(samples)} of {seen} "
                                         f"frames: is {rpk} an IMX500 network package?")
    finally:
        camera.stop()
    return samples


def kpi_row(model, rpk, samples):
    """The result row of recorded ``samples``: the DNN runtime is the row's latency."""
    dnn, dsp = (np.array([s[i] for s in samples], float) for i in (0, 1))
    stamps = np.array([s[2] for s in samples if s[2] is not None], float)
    camera_fps = (1e9 / float(np.median(np.diff(stamps)))) if len(stamps) > 1 else None
    median = float(np.median(dnn))
    return benchmarks.result_row(
        model=model, artifact=MCT_INT8, target=IMX500, runtime=ON_SENSOR, source=MEASURED,
        status=MEASURED, file=str(rpk), bytes=pathlib.Path(rpk).stat().st_size,
        latency_ms_median=median, latency_ms_p90=float(np.percentile(dnn, 90)), fps=1e3 / median,
        runs=len(samples), dsp_ms_median=float(np.median(dsp)), dsp_ms_p90=float(np.percentile(dsp, 90)),
        camera_fps=camera_fps)


def model_name(rpk):
    rpk = pathlib.Path(rpk).absolute()
    return rpk.parent.parent.name if rpk.parent.name == IMX500 else rpk.stem


def _check_results_path(path):
    """Fails before minutes of firmware upload when --results could not be written afterwards."""
    folder = pathlib.Path(path).absolute().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UsageError(f"--results {path}: cannot write in {folder}; choose another path")


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}; give the network with --rpk=PATH")
    if FLAGS.rpk is None:
        raise UsageError("--rpk must have a value: give the network.rpk to load with --rpk=PATH")
    results = read_results(FLAGS.results)
    _check_results_path(FLAGS.results)
    samples = record_kpis(FLAGS.rpk, FLAGS.frames or RECORD_FRAMES, FLAGS.skip_frames, FLAGS.frame_rate)
    row = kpi_row(FLAGS.name or model_name(FLAGS.rpk), FLAGS.rpk, samples)
    write_results(merge_rows(results, [row_record(row)]), FLAGS.results)
    benchmarks.print_rows([row], ("model", "artifact", "target", "runtime", "latency_ms_median",
                                  "latency_ms_p90", "dsp_ms_median", "fps", "bytes"), FLAGS.json)
    benchmarks.progress("imx500_on_pi", f"wrote {FLAGS.results}")


if __name__ == "__main__":
    benchmarks.run(main)
