"""Sony IMX500 adapter (Raspberry Pi AI Camera): turns any int8 TFLite into an IMX500 package with
Sony's own toolchain, and says how well the quantized model does.

    python compilers/imx500.py MODEL.tflite [-o DIR] [--calibration-data PATH] [--recipe NAME]
                               [--method ptq|gptq|qat] [--calibration-frames N] [--keras FILE]
                               [--face-grid COL,ROW,W,H] [--epochs N] [--tpc-version V] [--json]

Stages (each said on stderr; 2 to 5 minutes for TinyTracker on 2 busy cores, imxconv-tf 1 to 3),
run in a child process that never imports tensorflow_model_optimization (compilers.imx500.child):
  1. The TFLite is imported as a float Keras model (compilers.imx500.importer: weights dequantized) and
     checked against the TFLite itself on 32 calibration inputs; a model the importer cannot
     take, or an import that does not compute what the file computes, stops here.
  2. Model Compression Toolkit (MCT) quantizes it with the IMX500 target platform capabilities
     (edge-mdt-tpc), calibrated on the calibration data (--method ptq, the default; gptq and qat
     fine-tune for --epochs), and, where the data has gaze labels, evaluates it on the test split
     beside the float model and the TFLite.
  3. The deployment graph is exported as .keras and converted by `imxconv-tf` (needs Java 17)
     into packerOut.zip, dnnParams.xml and the memory report.

Calibration data: a TFLite written by `zoo build` carries a model card (its recipes, value ranges
and training data), so it needs no flag. Any other TFLite takes --calibration-data: a folder of
photos (resized to the input and scaled to its value range) or a GazeCapture root with --recipe
saying how its inputs are made. Nothing is ever calibrated on random data.

On the sensor the input tensor is the camera's RGB image, cropped to the inference ROI. A
face-grid model's grid channels are baked into the package as constants for one face grid
(default: the training split's median; --face-grid picks another), and the Pi must set the
matching ROI (report.json and run_on_pi.py give it); a grey model converts RGB to grey inside the
network (compilers.imx500.graph). What remains runs only on a Raspberry Pi: `sudo apt install
imx500-all imx500-tools`, then `imx500-package -i packerOut.zip -o DIR` writes DIR/network.rpk,
which run_on_pi.py loads with picamera2; the camera reports the latency (IMX500.get_kpi_info).

Output, in DIR (default: BUILD/imx500 for a build's int8 model, else MODEL_DIR/STEM_imx500):
packerOut.zip, dnnParams.xml, NAME_imx500_MemoryReport.json, NAME_imx500.pbtxt, NAME_imx500.keras,
imxconv.log, run_on_pi.py and report.json, made in a temporary folder and moved in complete.
Exit status: 0 packaged; 1 MCT, the import check or imxconv-tf failed, or the model does not fit;
2 bad input (one line on stderr, nothing written).
"""
import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import sys
import time
import typing

from compilers.imx500 import performance, tools
from compilers.imx500.report import Imx500Report, MemoryRecord
from compilers.report import Headline, performance_line
from compilers.imx500.tools import CompileError
from zoo import artifacts
from zoo.errors import EXIT_FAILED, EXIT_USAGE, ArgumentParser, UsageError, one_line_errors, progress
from zoo.artifacts.files import file_record

METHODS = ("ptq", "gptq", "qat")
# edge-mdt-tpc 1.3.0's newest IMX500 TPC; its README tests v5.0 with imx500-converter 3.17, the
# newest converter it lists (3.19.2 is pinned here). BUILD_NOTES: "IMX500 target platform".
TPC_VERSION = "5.0"
TPC_VERSIONS = ("1.0", "4.0", "4.1", "5.0")
TOOL = artifacts.Tool("compilers/imx500.py", "imx500", "-o")  # what it writes, for zoo.artifacts' rule
TARGET = "imx500"


def _recipes():
    from zoo.models.registry import RECIPES
    return sorted(RECIPES)


def _check_face_grid(face_grid):
    from zoo.data.gazecapture import GRID_CELLS
    try:
        cells = [int(v) for v in face_grid]
    except (TypeError, ValueError):
        cells = []
    if len(cells) != 4 or min(cells[:2]) < 0 or min(cells[2:]) < 1 or \
            cells[0] + cells[2] > GRID_CELLS or cells[1] + cells[3] > GRID_CELLS:
        raise UsageError(f"--face-grid {','.join(map(str, face_grid))}: give COL,ROW,W,H, 0-indexed cells "
                         f"inside the {GRID_CELLS}x{GRID_CELLS} grid, e.g. 8,6,9,9")
    return cells


def _check_grouped_convolutions(graph):
    """imxconv-tf takes a grouped convolution only when each group's filters are a whole multiple
    of its input channels; it says so only at its last step, minutes into a conversion, so the
    rule is checked here on the TFLite graph before MCT runs."""
    for op in graph.operators:
        if op.name != "CONV_2D":
            continue
        channels = graph.tensors[op.inputs[0]].shape[-1]
        filters, *_, group_channels = graph.tensors[op.inputs[1]].shape
        groups = channels // group_channels
        if groups > 1 and (filters // groups) % group_channels:
            raise CompileError(
                f"{graph.path}: operator {op.index} is a convolution in {groups} groups of "
                f"{group_channels} input channels and {filters // groups} filters, which imxconv-tf "
                f"refuses (\"Non-integer depth multiplier ({filters // groups}/{group_channels}) is not "
                "supported with group > 1\"); the IMX500 cannot take this model")


def _value_range(tensor):
    """The float range an input can hold: its int8/uint8 quantization's, else [0, 1]."""
    if not tensor.quantized:
        return [0.0, 1.0]
    low, high = {"int8": (-128, 127), "uint8": (0, 255)}.get(tensor.dtype, (-128, 127))
    scale, zero_point = tensor.scale[0], tensor.zero_point[0] if tensor.zero_point else 0
    return [(low - zero_point) * scale, (high - zero_point) * scale]


def _data(model, graph, card, calibration_data, recipe):
    """(data {kind, path}, {input name: recipe} or None, {input name: value range}) for the child."""
    from compilers.imx500.importer import input_names
    names = input_names(model)  # as the importer names the Keras inputs
    ranges = {name: _value_range(graph.tensors[index]) for index, name in names.items()}
    names = list(names.values())
    recipes = {i.name: i.recipe for i in card.inputs} if card else None
    if card:
        ranges = {i.name: list(i.value_range) for i in card.inputs}
    if recipe is not None:
        if len(names) != 1:
            raise UsageError(f"--recipe names one recipe, but {model} has {len(names)} inputs")
        recipes = {names[0]: recipe}
    if calibration_data is None:
        if card is None:
            raise UsageError(f"{model} carries no zoo model card, so its calibration data is unknown; pass "
                             "--calibration-data with a folder of photos or a GazeCapture root (and --recipe)")
        calibration_data = card.data.root
        if not pathlib.Path(calibration_data).is_dir():
            raise UsageError(f"{model} was trained on {calibration_data}, which is not here; pass "
                             "--calibration-data with that data (a GazeCapture root)")
    path = pathlib.Path(calibration_data).absolute()
    if not path.is_dir():
        raise UsageError(f"--calibration-data {path}: no such folder")
    if any(p.is_dir() and p.name.isdigit() and len(p.name) == 5 for p in path.iterdir()):
        if recipes is None:
            raise UsageError(f"{path} is a GazeCapture root: say how the inputs are made with --recipe "
                             f"({', '.join(_recipes())})")
        return {"kind": "gazecapture", "path": str(path)}, recipes, ranges
    from compilers.imx500.data import image_files
    image_files(path)
    return {"kind": "images", "path": str(path)}, None, ranges


@dataclasses.dataclass(frozen=True)
class Options:
    """compile()'s IMX500 options (the command line's flags)."""
    method: str = "ptq"
    calibration_frames: int = 200
    calibration_data: typing.Optional[str] = None
    recipe: typing.Optional[str] = None
    keras: typing.Optional[str] = None
    face_grid: typing.Optional[typing.Sequence] = None
    epochs: int = 2
    tpc_version: str = TPC_VERSION


def compile(model: "str | pathlib.Path", out_dir: "str | pathlib.Path | None" = None, *, overwrite: bool = False,
            progress: typing.Optional[typing.Callable[[str], None]] = None, **options) -> Imx500Report:
    """Packages int8 TFLite ``model`` for the IMX500 into ``out_dir`` (default BUILD/imx500 for a
    build's int8 model, else MODEL_DIR/STEM_imx500) and returns the report. ``options``: Options'
    fields. Bad input raises UsageError before anything is written; a toolchain failure, a failed
    import check or a model too big for the chip raises CompileError and leaves nothing in ``out_dir``."""
    say = progress or (lambda message: None)
    unknown = set(options) - {field.name for field in dataclasses.fields(Options)}
    if unknown:
        raise TypeError(f"compile() got unknown IMX500 options {sorted(unknown)}")
    model = pathlib.Path(model).absolute()
    graph, card, job = _checked_job(model, Options(**options))
    java_line, converter = tools.java_version(), tools.imxconv()
    default = artifacts.compiler_output(model, TARGET)
    inputs = [path for path in (model, options.get("calibration_data"), options.get("keras")) if path]
    out_dir = artifacts.check_output(out_dir or default, TOOL, inputs, overwrite, default)
    work = artifacts.staging_folder(out_dir)
    started = time.monotonic()
    try:
        scratch = work / ".scratch"
        scratch.mkdir()
        result = _run_mct_child({**job, "work_dir": str(scratch)}, scratch, say)
        report = _convert_and_report(model, graph, card, job, result, scratch, work, converter, java_line, say)
        report.seconds["total"] = round(time.monotonic() - started, 2)
        shutil.rmtree(scratch)
        artifacts.write_record(report, work / artifacts.REPORT)
        artifacts.publish(work, out_dir, TOOL, inputs, overwrite)
    except BaseException:
        artifacts.remove_staging(work)
        raise
    return report


def _checked_job(model, options):
    """(graph, model card, the child's job) after every check that needs no toolchain."""
    from zoo import tflite
    graph = tflite.read_graph(model)
    method, calibration_frames, calibration_data, recipe, keras, face_grid, epochs, tpc_version = (
        getattr(options, field.name) for field in dataclasses.fields(Options))
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if calibration_frames < 1 or epochs < 1:
        raise UsageError("--calibration-frames and --epochs must be at least 1")
    if tpc_version not in TPC_VERSIONS:
        raise UsageError(f"--tpc-version {tpc_version}: choose one of {', '.join(TPC_VERSIONS)}")
    if recipe is not None and recipe not in _recipes():
        raise UsageError(f"--recipe {recipe}: choose one of {', '.join(_recipes())}")
    if face_grid is not None:
        face_grid = _check_face_grid(face_grid)
    if keras is not None and not pathlib.Path(keras).is_file():
        raise UsageError(f"--keras {keras}: no such Keras model file")
    from compilers.imx500.importer import check_supported
    check_supported(graph)
    _check_grouped_convolutions(graph)
    card = artifacts.read_model_card(model)
    data, recipes, ranges = _data(model, graph, card, calibration_data, recipe)
    if face_grid and not any((r or "").startswith("face_grid_") for r in (recipes or {}).values()):
        raise UsageError("--face-grid applies to models with face-grid channels; this one has none")
    stem = f"{card.model if card else model.stem}_imx500"
    return graph, card, {"tflite": str(model), "keras": keras and str(pathlib.Path(keras).absolute()),
                         "data": data, "recipes": recipes, "input_ranges": ranges, "method": method,
                         "calibration_frames": calibration_frames, "epochs": epochs, "face_grid": face_grid,
                         "tpc_version": tpc_version, "stem": stem}


def _child_environment():
    """The child's environment: plain Keras 2.15 (no tf_keras switch), this repository importable."""
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    repo = str(pathlib.Path(__file__).resolve().parents[1])
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


def _convert_and_report(model, graph, card, job, result, scratch, work, converter, java_line, say):
    """imxconv-tf on the child's .keras, the memory check, the Pi script; the report."""
    stem, convert_dir = job["stem"], scratch / "imxconv"
    started = time.monotonic()
    tools.run_imxconv(converter, scratch / result["keras_package"], convert_dir, say)
    imxconv_seconds = round(time.monotonic() - started, 2)
    memory = tools.memory(convert_dir / f"{stem}_MemoryReport.json")
    tools.check_fit(memory, stem)
    kinds = {"packer_zip": convert_dir / "packerOut.zip", "dnn_params": convert_dir / "dnnParams.xml",
             "memory_report": convert_dir / f"{stem}_MemoryReport.json", "pbtxt": convert_dir / f"{stem}.pbtxt",
             "quantized_keras": scratch / result["keras_package"], "imxconv_log": scratch / "imxconv.log"}
    inputs = tools.tensors(kinds["dnn_params"], "input")
    outputs = tools.tensors(kinds["dnn_params"], "output")
    deployment = _deployment(card, result, inputs)
    if deployment["sensor_feeds_all_inputs"]:  # else the sensor cannot feed it
        kinds["pi_script"] = scratch / "run_on_pi.py"
        kinds["pi_script"].write_text(tools.pi_script(deployment))
    for path in kinds.values():
        os.replace(path, work / path.name)
    memory_record = MemoryRecord(**memory)
    return Imx500Report(
        model=card.model if card else model.stem,
        source={"tflite": str(model), "keras": job["keras"], "model_card": card is not None,
                "data": result["data"], "data_kind": job["data"]["kind"],
                "data_root": job["data"]["path"] if job["data"]["kind"] == "gazecapture" else None},
        method=job["method"],
        calibration={"frames": job["calibration_frames"], "epochs": job["epochs"] if job["method"] != "ptq" else None,
                     "inputs": result["specs"]},
        import_check=result["import_check"], memory=memory_record, inputs=inputs,
        outputs=outputs, metrics=result["metrics"], agreement=result["agreement"], deployment=deployment,
        files={kind: artifacts.FileRecord(**file_record(work / path.name, work)) for kind, path in kinds.items()},
        toolchain={**result["toolchain"], "tpc": f"edge-mdt-tpc imx500 v{job['tpc_version']}", "java": java_line},
        seconds={**result["seconds"], "imxconv": imxconv_seconds},
        headline=Headline(target=TARGET, status="packaged", fits=memory_record.fit_in_chip,
                          memory={"usage_bytes": memory_record.usage_bytes,
                                  "available_bytes": memory_record.available_bytes},
                          ops_total=len(graph.operators), ops_on_accelerator=len(graph.operators),
                          performance=performance.estimate(card.model if card else None, graph)))


def _deployment(card, result, inputs):
    """What the Pi side needs: the sensor's input, the baked face grid, the output's meaning."""
    from compilers.imx500.graph import GREY_RECIPES, LUMA
    recipes = [spec["recipe"] for spec in result["specs"]]
    deployment = {"sensor_inputs": [spec["name"] for spec in result["specs"]], "face_grid": result["face_grid"],
                  "gaze_scale_cm": card.output.scale_cm if card else None,
                  "output": f"gaze (XCam, YCam) / {card.output.scale_cm:g} cm (tanh range)" if card else
                  "the TFLite's outputs, dequantized", "sensor_feeds_all_inputs": len(inputs) == 1}
    if any(recipe in GREY_RECIPES for recipe in recipes):
        deployment["in_network_conversion"] = (
            "RGB to grey inside the network (a 1x1 convolution with the luma weights "
            f"{', '.join(map(str, LUMA))}, as training's crops), so the sensor's RGB image feeds it what it "
            "was trained on; package it with imx500-package's default RGB input format")
    if len(inputs) > 1:
        deployment["note"] = (f"the package has {len(inputs)} input tensors, but the IMX500 sensor feeds exactly "
                              "one (its ISP-cropped image): the other inputs cannot be supplied on the camera")
    deployment["raspberry_pi"] = {
        "install": "sudo apt install imx500-all imx500-tools",
        "package": "imx500-package -i packerOut.zip -o DIR",
        "writes": "DIR/network.rpk (runs only on a Raspberry Pi; not done here)",
        "run": "python3 run_on_pi.py (picamera2; loads network.rpk, sets the inference ROI, reads the outputs)",
        "input": "the ISP's RGB image tensor, scaled to the input's range by the package's input scale "
                 "(dnnParams.xml); check the packager's input format"}
    return deployment


def _summary(report):
    memory, metrics = report.memory, report.metrics
    check = report.import_check
    lines = [f"IMX500 package of {report.model} ({report.method}): {memory.usage_bytes:,} of "
             f"{memory.available_bytes:,} bytes on chip ({memory.utilization:.1%}), fits: {memory.fit_in_chip}",
             f"  import check on {check['frames']} inputs: " + (
                 f"max {check['max_abs_steps']:.2f}, mean {check['mean_abs_steps']:.3f} output steps"
                 if check.get("max_abs_steps") is not None else
                 f"max relative error {check.get('max_rel_error', float('nan')):.3g}")]
    if metrics:
        lines.append(f"  test error: {metrics['cm']:.3f} cm quantized (MCT, IMX500 TPC) vs {metrics['float']['cm']:.3f} "
                     f"cm float and {metrics['tflite']['cm']:.3f} cm for the TFLite ({metrics['frames']} frames); per "
                     f"frame {metrics['mean_cm_from_float']:.3f} cm from the float prediction")
        if max(metrics["float"]["prediction_std_cm"]) < 0.01:
            lines.append("  warning: the float model predicts a near-constant gaze (spread under 0.01 cm), so "
                         "its agreement with the quantized model says little")
    else:
        agreement = report.agreement
        lines.append(f"  no gaze labels in the calibration data, so no cm figure; MCT vs float on "
                     f"{agreement['frames']} inputs: mean |difference| {agreement['mean_abs_diff']:.4g}" +
                     (f", same top output on {agreement['top1_agreement']:.0%}" if "top1_agreement" in agreement
                      else ""))
    grid = report.deployment["face_grid"]
    if grid:
        lines.append(f"  face grid {grid['cells']} baked in ({grid['source']}); Pi ROI {grid['sensor_roi']}; "
                     f"package vs quantized model: max {grid['check_max_abs_diff_cm']:.2g} cm apart")
    if report.deployment.get("in_network_conversion"):
        lines.append(f"  {report.deployment['in_network_conversion']}")
    if not report.deployment["sensor_feeds_all_inputs"]:
        lines.append(f"  warning: {report.deployment['note']}")
    lines.append(performance_line(report.headline.performance))
    lines.append(f"wrote {report.files['packer_zip'].path} and report.json; on the Pi: "
                 f"{report.deployment['raspberry_pi']['package']}, then run_on_pi.py")
    return "\n".join(lines)


def make_parser():
    parser = ArgumentParser(
        prog="compilers/imx500.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Package any int8 TFLite for the Sony IMX500 (Raspberry Pi AI Camera): import it as a "
                    "float Keras model (checked against the file), quantize with MCT and the IMX500 target "
                    "platform capabilities, evaluate where the data has gaze labels, convert with imxconv-tf "
                    "(needs Java 17).",
        epilog="Calibration data: none needed for a TFLite written by `zoo build` (its model card names its "
               "data and recipes); any other TFLite needs --calibration-data.\n"
               "The last step, `imx500-package -i packerOut.zip -o DIR` (network.rpk), runs only on a "
               "Raspberry Pi (apt package imx500-tools); run_on_pi.py in DIR shows the picamera2 side.\n"
               "exit status: 0 packaged; 1 MCT, the import check or imxconv-tf failed, or the model does "
               "not fit in the chip or has a convolution imxconv-tf refuses; 2 bad input (nothing written)")
    parser.add_argument("model", help="an int8 TFLite file (any; a zoo-built one carries its own recipe and data)")
    parser.add_argument("-o", "--out", help="output folder (default: BUILD/imx500 for a build's int8 model, "
                                            "else MODEL_DIR/STEM_imx500)")
    parser.add_argument("--calibration-data", metavar="PATH",
                        help="a folder of photos, or a GazeCapture root (then --recipe); default: the data "
                             "named by the model card")
    parser.add_argument("--recipe", metavar="NAME", help="how a GazeCapture frame becomes the input: "
                                                         "face, face_grid_rgb, face_grid_grey, ...")
    parser.add_argument("--method", choices=METHODS, default="ptq",
                        help="MCT quantization: post-training (default), gradient-based PTQ, or QAT")
    parser.add_argument("--calibration-frames", type=int, default=200, metavar="N",
                        help="inputs MCT calibrates on (default 200)")
    parser.add_argument("--keras", metavar="FILE", help="quantize this float Keras model (.h5/.keras) instead "
                                                        "of the imported TFLite (still checked against it)")
    parser.add_argument("--face-grid", type=lambda text: [p.strip() for p in text.split(",")],
                        metavar="COL,ROW,W,H", help="face grid baked into a face-grid model's package, "
                        "0-indexed cells of the 25x25 grid (default: the training split's median)")
    parser.add_argument("--epochs", type=int, default=2, metavar="N",
                        help="fine-tuning epochs for --method gptq or qat (default 2)")
    parser.add_argument("--tpc-version", default=TPC_VERSION, choices=TPC_VERSIONS,
                        help=f"IMX500 target platform capabilities version (default {TPC_VERSION})")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into an existing -o folder not made by this tool (its files are kept)")
    parser.add_argument("--json", action="store_true", help="print report.json instead of the summary")
    return parser


@one_line_errors("compilers/imx500.py", failures=(CompileError,))
def main(argv: "list[str] | None" = None) -> int:
    args = make_parser().parse_args(sys.argv[1:] if argv is None else argv)
    report = compile(args.model, out_dir=args.out, method=args.method, calibration_frames=args.calibration_frames,
                     calibration_data=args.calibration_data, recipe=args.recipe, keras=args.keras,
                     face_grid=args.face_grid, epochs=args.epochs, tpc_version=args.tpc_version,
                     progress=progress, overwrite=args.overwrite)
    print(json.dumps(artifacts.to_json(report), indent=2) if args.json else _summary(report))
    return 0
