"""Sony IMX500 adapter (Raspberry Pi AI Camera): turns any int8 TFLite into an IMX500 package with
Sony's own toolchain, and says how well the quantized model does.

    python compilers/imx500.py MODEL.tflite [-o DIR] [--calibration-data PATH] [--recipe NAME]
                               [--method ptq|gptq|qat] [--output-bits 8|16] [--labels FILE] ...

Stages (each said on stderr), in a child process that never imports tensorflow_model_optimization
(compilers.imx500.child):
  0. Here, before any heavy work: the file is split between the sensor and the Pi
     (compilers.imx500.partition: post-processing the toolchain cannot take, such as MoveNet's
     keypoint decoding or DeepLab's TF1 resize and arg max, runs on the Pi from host_tail.tflite;
     such an operator in the middle of the network is refused, by name), and the calibration data
     is checked (compilers.imx500.calibration).
  1. The sensor's part is imported as a float Keras model (compilers.imx500.importer) and checked
     against LiteRT operator by operator (compilers.imx500.exact_check): an import that does not
     compute what the file computes stops here, naming the operator.
  2. Model Compression Toolkit (MCT) quantizes it with the IMX500 target platform capabilities
     (edge-mdt-tpc), a regression output at 16 bits where the TPC allows (compilers.imx500.quantize),
     and, where the data has gaze labels, evaluates it beside the float model and the TFLite.
  3. The deployment graph is exported as .keras and converted by `imxconv-tf` (needs Java 17)
     into packerOut.zip, dnnParams.xml and the memory report (the 8-bit output where the 16-bit
     one does not convert or fit).

Calibration data: a TFLite written by `zoo build` carries a model card (its recipes, value ranges
and training data), so it needs no flag. Any other TFLite takes --calibration-data: a folder of
photos (for every image input, scaled to the range the file's own quantization gives it), an
.npy/.npz of real inputs, or a GazeCapture root with --recipe. Never random data.

On the sensor the input tensor is the camera's RGB image, cropped to the inference ROI. A
face-grid model's grid channels are baked into the package as constants for one face grid
(default: the training split's median; --face-grid picks another), and the Pi must set the
matching ROI; a grey model converts RGB to grey inside the network (compilers.imx500.graph).
What remains runs only on a Raspberry Pi: `imx500-package -i packerOut.zip -o DIR -f
input_format.json` writes DIR/network.rpk, which run_on_pi.py loads with picamera2.

Output, in DIR (default: BUILD/imx500 for a build's int8 model, else MODEL_DIR/STEM_imx500):
packerOut.zip, dnnParams.xml, NAME_imx500_MemoryReport.json, NAME_imx500.pbtxt, NAME_imx500.keras,
imxconv.log, run_on_pi.py, pi_config.json, input_format.json, network_intrinsics.json,
host_tail.tflite (when the Pi runs a tail) and report.json, made in a temporary folder and moved
in complete. Exit status: 0 packaged; 1 MCT, the import check or imxconv-tf failed, or the model
does not fit; 2 bad input (one line on stderr, nothing written).
"""
import dataclasses
import json
import os
import pathlib
import shutil
import sys
import time
import typing

from compilers import common, targets
from compilers.imx500 import packaging, tools
from compilers.imx500.report import Imx500Report, summary
from compilers.imx500.tools import CompileError
from zoo import artifacts
from zoo.errors import EXIT_FAILED, EXIT_USAGE, UsageError, one_line_errors, progress

METHODS = ("ptq", "gptq", "qat")
# edge-mdt-tpc 1.3.0's newest IMX500 TPC; its README tests v5.0 with imx500-converter 3.17, the
# newest converter it lists (3.19.2 is pinned here). BUILD_NOTES: "IMX500 target platform".
TPC_VERSION = "5.0"
TPC_VERSIONS = ("1.0", "4.0", "4.1", "5.0")
TARGET = "imx500"
TOOL = targets.get(TARGET).tool  # what it writes, for zoo.artifacts' output-folder rule


@dataclasses.dataclass(frozen=True)
class Options:
    """compile()'s IMX500 options (the command line's flags). ``output_bits`` None: 16 for a zoo
    gaze model (a regression output), 8 otherwise; ``task`` None: inferred from the outputs."""
    method: str = "ptq"
    calibration_frames: int = 200
    calibration_data: typing.Optional[str] = None
    recipe: typing.Optional[str] = None
    keras: typing.Optional[str] = None
    face_grid: typing.Optional[typing.Sequence] = None
    epochs: int = 2
    tpc_version: str = TPC_VERSION
    output_bits: typing.Optional[int] = None
    labels: typing.Optional[str] = None
    task: typing.Optional[str] = None


def compile(model: "str | pathlib.Path", out_dir: "str | pathlib.Path | None" = None, *,
            overwrite: bool = False, progress: typing.Optional[typing.Callable[[str], None]] = None,
            **options) -> Imx500Report:
    """Packages int8 TFLite ``model`` for the IMX500 into ``out_dir`` (default BUILD/imx500 for a
    build's int8 model, else MODEL_DIR/STEM_imx500) and returns the report. ``options``: Options'
    fields. Bad input raises UsageError before anything is written; a toolchain failure, a failed
    import check or a model too big for the chip raises CompileError and leaves nothing in ``out_dir``."""
    say = progress or (lambda message: None)
    model = pathlib.Path(model).absolute()
    plan = packaging.check(model, common.options_record(Options, options, "IMX500"))
    java_line, converter = tools.java_version(), tools.imxconv()
    default = artifacts.compiler_output(model, TARGET)
    inputs = [path for path in (model, options.get("calibration_data"), options.get("keras")) if path]
    out_dir = artifacts.check_output(out_dir or default, TOOL, inputs, overwrite, default)
    started = time.monotonic()
    with artifacts.staged(out_dir, TOOL, inputs, overwrite) as work:
        scratch = work / ".scratch"
        scratch.mkdir()
        result = _run_mct_child({**plan.job, "work_dir": str(scratch)}, scratch, say)
        report = packaging.package(plan, result, scratch, work, (converter, java_line), say)
        report.seconds["total"] = round(time.monotonic() - started, 2)
        shutil.rmtree(scratch)
        artifacts.write_record(report, work / artifacts.REPORT)
    return report


def _child_environment():
    """The child's environment: plain Keras 2.15 (no tf_keras switch), this repository importable."""
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    repo = str(pathlib.Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _run_mct_child(job, scratch, say):
    """Runs the import, MCT and export in the child, relaying its progress lines; its result."""
    from compilers.imx500.child import RESULT_FILE
    job_path, log_path = scratch / "job.json", scratch / "mct.log"
    job_path.write_text(json.dumps(job, indent=2))
    command = [sys.executable, "-m", "compilers.imx500.child", str(job_path)]
    returncode, timed_out = tools.run_logged(command, log_path, say, tools.MCT_TIMEOUT_S,
                                             env=_child_environment(), merge_stderr=False)
    log_text = log_path.read_text(errors="replace")
    said = [line for line in log_text.splitlines() if line.startswith(("error: ", "failed: "))]
    if timed_out:
        raise CompileError(f"the MCT stage did not finish within {tools.MCT_TIMEOUT_S} s and was stopped")
    if returncode == EXIT_USAGE:
        raise UsageError(said[-1].removeprefix("error: ") if said else tools.error_line(log_text, True))
    if returncode == EXIT_FAILED and said:
        raise CompileError(said[-1].removeprefix("failed: "))
    if returncode < 0:
        raise CompileError(f"MCT stage stopped by signal {-returncode}")
    if returncode != 0:
        raise CompileError(f"MCT stage failed (exit {returncode}): {tools.error_line(log_text, True)}")
    return json.loads((scratch / RESULT_FILE).read_text())


def make_parser():
    parser = common.adapter_parser(
        "imx500", model_help="an int8 TFLite file (any; a zoo-built one carries its own recipe and data)",
        description="Package any int8 TFLite for the Sony IMX500 (Raspberry Pi AI Camera): split it between "
                    "the sensor and the Pi (post-processing the toolchain cannot take runs on the Pi), "
                    "import the sensor's part as a float Keras model (checked against LiteRT operator by "
                    "operator), quantize with MCT and the IMX500 target platform capabilities, evaluate "
                    "where the data has gaze labels, convert with imxconv-tf (needs Java 17).",
        epilog="Calibration data: none needed for a TFLite written by `zoo build` (its model card names its "
               "data and recipes); any other TFLite needs --calibration-data.\n"
               "The last step, `imx500-package -i packerOut.zip -o DIR -f input_format.json` (network.rpk), "
               "runs only on a Raspberry Pi (apt package imx500-tools); run_on_pi.py in DIR runs the package "
               "with picamera2, and the host tail where there is one.\n"
               "exit status: 0 packaged; 1 MCT, the import check or imxconv-tf failed, or the model does "
               "not fit in the chip or has a convolution imxconv-tf refuses; 2 bad input, including an "
               "operator the sensor cannot take in the middle of the network (nothing written)")
    parser.add_argument("--calibration-data", metavar="PATH",
                        help="a folder of photos (any image input), an .npy (a one-input model) or .npz "
                             "(arrays by input name) of real inputs, or a GazeCapture root (then --recipe); "
                             "default: the data named by the model card")
    parser.add_argument("--recipe", metavar="NAME", help="how a GazeCapture frame becomes the input: "
                                                         "face, face_grid_rgb, face_grid_grey, ...")
    parser.add_argument("--method", choices=METHODS, default="ptq",
                        help="MCT quantization: post-training (default), gradient-based PTQ, or QAT")
    parser.add_argument("--calibration-frames", type=int, default=200, metavar="N",
                        help="inputs MCT calibrates on (default 200)")
    parser.add_argument("--output-bits", type=int, choices=(8, 16), default=None,
                        help="activation bits of the output layer(s) (default: 16 for a zoo gaze model, a "
                             "regression output; 8 otherwise); 8 is kept where the chip or memory says no")
    parser.add_argument("--labels", metavar="FILE",
                        help="class labels, one per line, for a classifier (written into the network "
                             "intrinsics picamera2 reads)")
    parser.add_argument("--task", choices=packaging.TASKS,
                        help="the network's task for picamera2 (default: classification or segmentation "
                             "where the outputs say so, else none)")
    parser.add_argument("--keras", metavar="FILE",
                        help="quantize this float Keras model (.h5/.keras) instead of the imported TFLite "
                             "(the import is still checked)")
    parser.add_argument("--face-grid", type=lambda text: [p.strip() for p in text.split(",")],
                        metavar="COL,ROW,W,H", help="face grid baked into a face-grid model's package, "
                        "0-indexed cells of the 25x25 grid (default: the training split's median)")
    parser.add_argument("--epochs", type=int, default=2, metavar="N",
                        help="fine-tuning epochs for --method gptq or qat (default 2)")
    parser.add_argument("--tpc-version", default=TPC_VERSION, choices=TPC_VERSIONS,
                        help=f"IMX500 target platform capabilities version (default {TPC_VERSION})")
    return parser


@one_line_errors("compilers/imx500.py", failures=(CompileError,))
def main(argv: "list[str] | None" = None) -> int:
    args = make_parser().parse_args(sys.argv[1:] if argv is None else argv)
    options = {field.name: getattr(args, field.name) for field in dataclasses.fields(Options)}
    report = compile(args.model, out_dir=args.out, progress=progress, overwrite=args.overwrite, **options)
    common.print_report(report, args.json, summary)
    return 0
