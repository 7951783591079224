"""The IMX500 adapter's two ends around the MCT child: every check that needs no toolchain (the
sensor/Pi split, the calibration data, the flags), and, after the child, the conversion by
imxconv-tf (16-bit output first where asked, 8-bit where that does not convert or fit), the
files the Pi needs and the report."""
import dataclasses
import os
import pathlib
import time
import typing

from compilers.imx500 import calibration, deployment, performance, tools
from compilers.imx500.deployment import TASKS
from compilers.imx500.exact_check import ExactCheck
from compilers.imx500.records import (AgreementRecord, CalibrationInput, CalibrationRecord, DeploymentRecord,
                                      FaceGridRecord, HostTailRecord, RaspberryPiRecord, SourceRecord)
from compilers.imx500.report import Imx500Report, MemoryRecord, PrecisionRecord, QuantizedErrors, SplitRecord
from compilers.imx500.tools import CompileError
from compilers.report import Headline
from zoo import artifacts
from zoo.errors import UsageError
from zoo.artifacts.files import file_record

__all__ = ["TASKS", "Plan", "check", "package"]
TARGET = "imx500"
METHODS = ("ptq", "gptq", "qat")
TPC_VERSIONS = ("1.0", "4.0", "4.1", "5.0")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the checks found: the file, its graph, model card and sensor/Pi split, the labels
    and task for picamera2, and the child's job."""
    model: pathlib.Path
    graph: typing.Any
    card: typing.Any
    split: typing.Any
    labels: typing.Optional[typing.List[str]]
    task: typing.Optional[str]
    job: dict


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


def _check_grouped_convolutions(graph, operators):
    """imxconv-tf takes a grouped convolution only when each group's filters are a whole multiple
    of its input channels; it says so only at its last step, minutes into a conversion, so the
    rule is checked here on the TFLite graph before MCT runs."""
    for op in operators:
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


def _check_flags(options):
    if options.method not in METHODS:
        raise UsageError(f"unknown method {options.method!r}; choose one of {', '.join(METHODS)}")
    if options.calibration_frames < 1 or options.epochs < 1:
        raise UsageError("--calibration-frames and --epochs must be at least 1")
    if options.tpc_version not in TPC_VERSIONS:
        raise UsageError(f"--tpc-version {options.tpc_version}: choose one of {', '.join(TPC_VERSIONS)}")
    if options.output_bits not in (None, 8, 16):
        raise UsageError(f"--output-bits {options.output_bits}: choose 8 or 16")
    if options.task not in (None, *TASKS):
        raise UsageError(f"--task {options.task}: choose one of {', '.join(TASKS)}")
    if options.keras is not None and not pathlib.Path(options.keras).is_file():
        raise UsageError(f"--keras {options.keras}: no such Keras model file")


def _labels(path, graph, task):
    """The class labels of --labels FILE (one per line), as many as a classifier's classes."""
    if path is None:
        return None
    try:
        labels = [line.strip() for line in pathlib.Path(path).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--labels {path}: not a readable text file ({error}); give one label per "
                         "line") from None
    classes = graph.tensors[graph.outputs[0]].shape[-1]
    if task != "classification" or len(labels) != classes:
        raise UsageError(f"--labels {path}: {len(labels)} labels for a model whose task is "
                         f"{task or 'unknown'} with {classes} values per output; labels are for a "
                         "classifier, one per class")
    return labels


def check(model, options) -> Plan:
    """Every check that needs no toolchain, before anything is written; the plan."""
    from compilers.imx500.importer import input_names
    from compilers.imx500.partition import partition
    from zoo import tflite
    graph = tflite.read_graph(model)
    _check_flags(options)
    face_grid = _check_face_grid(options.face_grid) if options.face_grid is not None else None
    names = input_names(model)
    calibration.check_static_shapes(model, graph, names)  # before the split: SHAPE comes with them
    split = partition(graph)
    _check_grouped_convolutions(graph, split.operators(graph, "sensor"))
    card = artifacts.read_model_card(model)
    data, recipes, ranges = calibration.plan(model, graph, names, card, options.calibration_data,
                                             options.recipe, options.calibration_frames)
    if face_grid and not any((r or "").startswith("face_grid_") for r in (recipes or {}).values()):
        raise UsageError("--face-grid applies to models with face-grid channels; this one has none")
    task = options.task or deployment.infer_task(graph)
    labels = _labels(options.labels, graph, task)
    bits = options.output_bits or (16 if card is not None else 8)  # a zoo card: the gaze regression output
    stem = f"{card.model if card else model.stem}_imx500"
    job = {"tflite": str(model), "keras": options.keras and str(pathlib.Path(options.keras).absolute()),
           "data": data, "recipes": recipes, "input_ranges": ranges, "method": options.method,
           "calibration_frames": options.calibration_frames, "epochs": options.epochs, "face_grid": face_grid,
           "tpc_version": options.tpc_version, "stem": stem, "output_bits": bits}
    return Plan(model, graph, card, split, labels, task, job)


def _convert(plan, result, scratch, converter, say):
    """imxconv-tf on the child's package with the most output bits, then on the next where that
    fails or does not fit; (conversion folder, the .keras converted, memory figures, bits, note)."""
    stem, note = plan.job["stem"], result["output_bits_note"]
    packages = sorted(result["keras_packages"].items(), key=lambda item: -int(item[0]))
    for number, (bits, name) in enumerate(packages):
        convert_dir = scratch / f"imxconv_{bits}bit"
        try:
            tools.run_imxconv(converter, scratch / name, convert_dir, say)
            memory = tools.memory(convert_dir / f"{stem}_MemoryReport.json")
            tools.check_fit(memory, stem)
            return convert_dir, scratch / name, memory, int(bits), note
        except CompileError as error:
            if number == len(packages) - 1:
                raise
            note = f"kept {packages[-1][0]} bits: with a {bits}-bit output, {error}"
            say(note)
    raise AssertionError("no package to convert")


RASPBERRY_PI = RaspberryPiRecord(
    install="sudo apt install imx500-all imx500-tools",
    package="imx500-package -i packerOut.zip -o DIR -f input_format.json",
    writes="DIR/network.rpk (runs only on a Raspberry Pi; not done here)",
    run="python3 run_on_pi.py (picamera2; loads network.rpk, sets the inference ROI, reads the "
        "outputs, runs host_tail.tflite where there is one)")


def _deployment(plan, result, inputs, roi) -> DeploymentRecord:
    """What the Pi side needs: the sensor's input, the baked face grid, the output's meaning,
    picamera2's intrinsics, the host tail."""
    from compilers.imx500.graph import GREY_PHOTO, GREY_RECIPES, LUMA
    card, recipes = plan.card, [spec["recipe"] for spec in result["specs"]]
    speed = performance.estimate(card.model if card else None, plan.graph)
    record = DeploymentRecord(
        sensor_inputs=[spec["name"] for spec in result["specs"]],
        face_grid=_from_child(FaceGridRecord, result["face_grid"]),
        roi=roi, gaze_scale_cm=card.output.scale_cm if card else None, task=plan.task, labels=plan.labels,
        host_tail=_from_child(HostTailRecord, result["host_tail"]),
        network_intrinsics=deployment.intrinsics(plan.graph, plan.task, plan.labels, speed),
        output=f"gaze (XCam, YCam) / {card.output.scale_cm:g} cm (tanh range)" if card else
        "the TFLite's outputs, dequantized (the host tail's where the Pi runs one)",
        sensor_feeds_all_inputs=len(inputs) == 1, raspberry_pi=RASPBERRY_PI)
    if any(recipe in GREY_RECIPES or recipe == GREY_PHOTO for recipe in recipes):
        record.in_network_conversion = (
            "RGB to grey inside the network (a 1x1 convolution with the luma weights "
            f"{', '.join(map(str, LUMA))}, as training's crops), so the sensor's RGB image feeds it what it "
            "was trained on")
    if len(inputs) > 1:
        record.note = (f"the package has {len(inputs)} input tensors, but the IMX500 sensor feeds exactly "
                       "one (its ISP-cropped image): the other inputs cannot be supplied on the camera")
    return record


def _from_child(kind, value):
    """A section of the child's result (JSON) as a ``kind`` record checked field by field; None
    for a section the child left None."""
    return None if value is None else artifacts.record_from(kind, value, "the child's result")


def _files(plan, result, scratch, converted, record, inputs):
    """{kind: path} of everything the package holds, the Pi's files written first. ``converted``:
    (imxconv-tf's folder, the .keras it converted); ``inputs``: the package's input tensors."""
    stem, (convert_dir, keras) = plan.job["stem"], converted
    kinds = {"packer_zip": convert_dir / "packerOut.zip", "dnn_params": convert_dir / "dnnParams.xml",
             "memory_report": convert_dir / f"{stem}_MemoryReport.json",
             "pbtxt": convert_dir / f"{stem}.pbtxt",
             "quantized_keras": keras, "imxconv_log": scratch / "imxconv.log"}
    if result["host_tail"]:
        kinds["host_tail"] = scratch / result["host_tail"]["file"]
    if record.sensor_feeds_all_inputs:  # else the sensor cannot feed it and there is nothing to run
        config = deployment.pi_config(plan.graph, plan.split, record)
        paths = deployment.write_pi_files(scratch, config, inputs)
        kinds.update({path.stem: path for path in paths})
    return kinds


def _split_record(plan, result):
    graph, split = plan.graph, plan.split
    return SplitRecord(sensor_operators=len(split.sensor),
                       host=[f"{i} {graph.operators[i].name}" for i in split.host],
                       sensor_outputs=[graph.tensors[i].name for i in split.sensor_outputs],
                       starts_at={str(i): why for i, why in split.reasons.items()},
                       host_tail=_from_child(HostTailRecord, result["host_tail"]))


def _precision(plan, result, bits, note):
    metrics, agreement = result["metrics"], result["agreement"]
    return PrecisionRecord(
        asked=plan.job["output_bits"], packaged=bits, note=note,
        mean_cm_from_float=metrics["mean_cm_from_float_by_output_bits"] if metrics else None,
        mean_abs_diff_from_float={b: v["mean_abs_diff"] for b, v in agreement["by_output_bits"].items()})


def package(plan, result, scratch, work, toolchain, say) -> Imx500Report:
    """imxconv-tf on the child's result, the memory check, the Pi's files moved into ``work``;
    the report. ``toolchain``: (imxconv-tf's path, Java's version line)."""
    converter, java_line = toolchain
    started = time.monotonic()
    convert_dir, keras, memory, bits, note = _convert(plan, result, scratch, converter, say)
    imxconv_seconds = round(time.monotonic() - started, 2)
    inputs = tools.tensors(convert_dir / "dnnParams.xml", "input")
    _, height, width = plan.graph.tensors[plan.graph.inputs[0]].shape[:3]
    roi = deployment.sensor_roi(result["face_grid"] and result["face_grid"]["cells"], (width, height))
    record = _deployment(plan, result, inputs, roi)
    kinds = _files(plan, result, scratch, (convert_dir, keras), record, inputs)
    for path in kinds.values():
        os.replace(path, work / path.name)
    memory_record, job, card = MemoryRecord(**memory), plan.job, plan.card
    name = card.model if card else plan.model.stem
    return Imx500Report(
        model=name,
        source=SourceRecord(tflite=str(plan.model), keras=job["keras"], model_card=card is not None,
                            data=result["data"], data_kind=job["data"]["kind"],
                            data_root=job["data"]["path"] if job["data"]["kind"] == "gazecapture" else None),
        method=job["method"],
        calibration=CalibrationRecord(frames=job["calibration_frames"],
                                      epochs=job["epochs"] if job["method"] != "ptq" else None,
                                      inputs=[CalibrationInput(**spec) for spec in result["specs"]]),
        import_check=ExactCheck(**result["import_check"]), split=_split_record(plan, result),
        precision=_precision(plan, result, bits, note), memory=memory_record, inputs=inputs,
        outputs=tools.tensors(work / "dnnParams.xml", "output"),
        metrics=result["metrics"] and artifacts.record_from(QuantizedErrors, result["metrics"],
                                                            "the child's result"),
        agreement=artifacts.record_from(AgreementRecord, result["agreement"], "the child's result"),
        deployment=record,
        files={kind: artifacts.FileRecord(**file_record(work / path.name, work))
               for kind, path in kinds.items()},
        toolchain={**result["toolchain"], "tpc": f"edge-mdt-tpc imx500 v{job['tpc_version']}",
                   "java": java_line},
        seconds={**result["seconds"], "imxconv": imxconv_seconds},
        headline=Headline(target=TARGET, status="packaged", fits=memory_record.fit_in_chip,
                          memory={"usage_bytes": memory_record.usage_bytes,
                                  "available_bytes": memory_record.available_bytes},
                          ops_total=len(plan.graph.operators), ops_on_accelerator=len(plan.split.sensor),
                          performance=performance.estimate(card.model if card else None, plan.graph)))
