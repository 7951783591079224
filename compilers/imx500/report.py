"""report.json of the IMX500 target: the package's memory on the chip, where each operator runs
(sensor or Pi), the exact import check, the output's precision, how well the MCT-quantized model
does, and what the Raspberry Pi side needs; and its one-screen summary."""
import dataclasses
import pathlib
import typing

from compilers import common
from compilers.imx500.exact_check import ExactCheck
from compilers.imx500.records import (AgreementRecord, CalibrationRecord, DeploymentRecord, HostTailRecord,
                                      PackageTensor, SourceRecord)
from compilers.report import Headline, performance_line
from zoo import artifacts


@dataclasses.dataclass
class MemoryRecord:
    usage_bytes: int
    available_bytes: int
    utilization: float
    fit_in_chip: bool
    runtime_bytes: int
    model_bytes: int
    reserved_bytes: int
    input_persistent: typing.Optional[typing.Any]


@dataclasses.dataclass
class SplitRecord:
    """Where the operators run: ``sensor_operators`` of the file on the IMX500, the rest (``host``:
    "INDEX NAME") on the Pi from host_tail.tflite; ``starts_at``: why each operator that starts
    the host tail cannot run on the sensor; ``host_tail``: the tail's file, tensors and check."""
    sensor_operators: int
    host: typing.List[str]
    sensor_outputs: typing.List[str]
    starts_at: typing.Dict[str, str]
    host_tail: typing.Optional[HostTailRecord]


@dataclasses.dataclass
class PrecisionRecord:
    """The output's activation bits: ``asked`` (16 for a regression model by default), ``packaged``
    (8 where MCT, imxconv-tf or the memory said no: ``note`` says which); per output bits, the
    package's distance from the float model (cm per frame with gaze labels, else mean |difference|)."""
    asked: int
    packaged: int
    note: typing.Optional[str]
    mean_cm_from_float: typing.Optional[typing.Dict[str, float]]
    mean_abs_diff_from_float: typing.Dict[str, float]


@dataclasses.dataclass
class QuantizedErrors:
    """The gaze errors of the MCT model of the highest output bits (``mct``) beside the float
    model's and the TFLite's on the same test frames; ``float_prediction_std_cm``: the spread (x, y)
    of the float model's prediction, near 0 for a model that predicts a constant, whose agreement
    with the quantized model then says little; the mean distance per frame of the MCT model's
    prediction from the float model's (``mean_cm_from_float``), and of each output bits' variant."""
    mct: artifacts.GazeErrors
    float_model: artifacts.GazeErrors
    tflite: artifacts.GazeErrors
    float_prediction_std_cm: typing.List[float]
    mean_cm_from_float: float
    mean_cm_from_float_by_output_bits: typing.Dict[str, float]


_ERRORS = ("cm", "cm_phone", "cm_tablet", "frames")


def _upgraded_metrics(metrics: dict) -> dict:
    """Version 3's metrics (the MCT model's errors at the top level, "float" with its
    prediction_std_cm and "tflite" beside them) in QuantizedErrors' layout."""
    def errors(value):
        return {key: value[key] for key in _ERRORS if key in value} if isinstance(value, dict) else value
    moved = {"mct": errors(metrics), "float_model": errors(metrics.get("float")),
             "tflite": errors(metrics.get("tflite")),
             "float_prediction_std_cm": (metrics.get("float") or {}).get("prediction_std_cm")}
    kept = ("mean_cm_from_float", "mean_cm_from_float_by_output_bits")
    return {**moved, **{key: metrics[key] for key in kept if key in metrics}}


@dataclasses.dataclass
class Imx500Report:
    """report.json of the IMX500 target. ``metrics``: the MCT model's gaze errors beside the float
    model's and the TFLite's when the data has labels, else None; ``agreement``: the MCT model's
    outputs against the float model's on the check inputs; ``import_check``: the import's twin
    against LiteRT, operator by operator."""
    KIND: typing.ClassVar[str] = "zoo.imx500_report"
    # 2: headline added; 3: exact check, split, precision; 4: metrics as QuantizedErrors;
    # 5: source, calibration, inputs, outputs, agreement, deployment, host tail as records
    SCHEMA_VERSION: typing.ClassVar[int] = 5
    READS_FROM: typing.ClassVar[int] = 3

    @classmethod
    def upgrade(cls, value: dict, version: int) -> dict:
        """A version-3 report with its metrics moved into QuantizedErrors' layout; version 4 has
        version 5's layout (its sections now checked field by field), so it reads as it is."""
        metrics = value.get("metrics")
        if version == 3 and isinstance(metrics, dict):
            return {**value, "metrics": _upgraded_metrics(metrics)}
        return value
    model: str
    source: SourceRecord
    method: str
    calibration: CalibrationRecord
    import_check: ExactCheck
    split: SplitRecord
    precision: PrecisionRecord
    memory: MemoryRecord
    inputs: typing.List[PackageTensor]
    outputs: typing.List[PackageTensor]
    metrics: typing.Optional[QuantizedErrors]
    agreement: AgreementRecord
    deployment: DeploymentRecord
    files: typing.Dict[str, artifacts.FileRecord]
    toolchain: typing.Dict[str, typing.Optional[str]]
    seconds: typing.Dict[str, float]
    headline: Headline


Report = Imx500Report


def read_report(folder: "str | pathlib.Path") -> Imx500Report:
    """The report compile() left in ``folder``; one UsageError line when it is missing or damaged."""
    return common.read_report(Imx500Report, folder)


def _quality_lines(report):
    metrics, precision = report.metrics, report.precision
    bits = f"{precision.packaged}-bit output" + (f" ({precision.note})" if precision.note else "")
    if metrics:
        by_bits = ", ".join(f"{b}-bit {cm:.3f} cm" for b, cm in (precision.mean_cm_from_float or {}).items())
        lines = [f"  test error: {metrics.mct.cm:.3f} cm quantized (MCT, IMX500 TPC, {bits}) vs "
                 f"{metrics.float_model.cm:.3f} cm float and {metrics.tflite.cm:.3f} cm for the TFLite "
                 f"({metrics.mct.frames} frames); per frame from the float prediction: {by_bits}"]
        if max(metrics.float_prediction_std_cm) < 0.01:
            lines.append("  warning: the float model predicts a near-constant gaze (spread under 0.01 cm), "
                         "so its agreement with the quantized model says little")
        return lines
    agreement = report.agreement
    by_bits = ", ".join(f"{b}-bit {d:.4g}" for b, d in precision.mean_abs_diff_from_float.items())
    return [f"  no gaze labels in the calibration data, so no cm figure; MCT ({bits}) vs float on "
            f"{agreement.frames} inputs: mean |difference| {by_bits}" +
            (f", same top output on {agreement.top1_agreement:.0%}" if agreement.top1_agreement is not None
             else "")]


def _pi_part(split):
    """Where the Pi takes over: how many operators, from which, of which kinds."""
    if not split.host:
        return ""
    starts = ", ".join(f"{index} ({why})" for index, why in split.starts_at.items())
    kinds = sorted({entry.split(" ", 1)[1] for entry in split.host})
    return (f"; on the Pi (host_tail.tflite): {len(split.host)} from operator {starts}: "
            f"{', '.join(kinds)}")


def summary(report: Imx500Report) -> str:
    """The command's summary: memory, where the operators run, the checks, the quality."""
    memory, check, split = report.memory, report.import_check, report.split
    lines = [f"IMX500 package of {report.model} ({report.method}): {memory.usage_bytes:,} of "
             f"{memory.available_bytes:,} bytes on chip ({memory.utilization:.1%}), "
             f"fits: {memory.fit_in_chip}",
             f"  on the sensor: {split.sensor_operators} of {report.headline.ops_total} operators"
             + _pi_part(split),
             f"  exact import check on {check.frames} inputs: worst operator {check.max_steps:.2f} steps "
             f"({check.worst_operator}; threshold {check.threshold_steps:g}); float model at the outputs: "
             f"max {check.float_output_steps} / mean {check.float_mean_steps} steps (information)"]
    if split.host_tail:
        lines.append(f"  host tail check: {split.host_tail.check}")
    lines += _quality_lines(report)
    deployment, grid = report.deployment, report.deployment.face_grid
    if grid:
        lines.append(f"  face grid {grid.cells} baked in ({grid.source}); Pi ROI {grid.sensor_roi}; "
                     f"package vs quantized model: max {grid.check_max_abs_diff_cm:.2g} cm apart")
    if deployment.in_network_conversion:
        lines.append(f"  {deployment.in_network_conversion}")
    if not deployment.sensor_feeds_all_inputs:
        lines.append(f"  warning: {deployment.note}")
    lines.append(performance_line(report.headline.performance))
    lines.append(f"wrote {report.files['packer_zip'].path} and report.json; on the Pi: "
                 f"{deployment.raspberry_pi.package}, then python3 run_on_pi.py")
    return "\n".join(lines)
