"""A build's int8 model on every target of compilers.targets, for benchmarks.compare: each target
compiles it (a target whose row says ``reused`` keeps an earlier output of the same build), and
each report's headline (compilers.report.Headline) becomes one result row. The rows of the Edge
TPU and the IMX500 keep the fields their own RESULTS.md tables show; any other target's row is
its headline alone, so a target added to the table appears here with no change.

Every row carries ``headline`` (the report's, as a dict) and ``performance``: the headline's
unless this run measured the target (the Edge TPU through `--device`), which replaces it."""
import dataclasses
import pathlib
import typing

import benchmarks
from benchmarks import EDGETPU, IMX500, MCT_INT8, MEASURED, ON_SENSOR, TFMOT_INT8, accuracy, latency
from benchmarks.results import CompilerFigures
from compilers.targets import Target
from zoo import artifacts, errors

NOT_ON_PI = "not measured: needs the Raspberry Pi AI Camera (python -m benchmarks.imx500_on_pi)"
NOT_MEASURED = "not measured here"


@dataclasses.dataclass
class Outcome:
    """A target's report for one build, or the one-line reason it has none."""
    target: Target
    report: typing.Optional[object]
    failure: typing.Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Context:
    """What the rows of one build need: its folder, its tfmot int8 model (benchmarks.Artifact),
    the accuracy rows of its artifacts, how to time (benchmarks.latency.Timing) and on which Edge
    TPU (None: the first found)."""
    folder: pathlib.Path
    int8: benchmarks.Artifact
    accuracy_rows: typing.List[dict]
    timing: latency.Timing
    device: typing.Optional[str] = None


def _failure_path(folder, target):
    return folder / f"{target.name}.failed"


def compile_target(target: Target, folder: pathlib.Path, int8: benchmarks.Artifact, rebuild: bool,
                   say: typing.Callable[[str], None]) -> Outcome:
    """``target``'s report for the int8 model of build ``folder``, in ``folder``/NAME. A reused
    target's earlier report is taken as it is (its failure too, kept in NAME.failed) until
    ``rebuild``; any other target compiles again."""
    out, failure_path = folder / target.name, _failure_path(folder, target)
    if target.reused and not rebuild:
        if (out / artifacts.REPORT).is_file():
            say(f"{int8.model}: reusing the {target.title} output in {out}")
            return Outcome(target, target.module().read_report(out))
        if failure_path.is_file():
            return Outcome(target, None, failure_path.read_text().strip())
    say(f"{int8.model}: {target.title}")
    try:
        report = target.module().compile(int8.path, out, progress=lambda m: say(f"{int8.model}: {m}"))
    except Exception as error:  # noqa: BLE001 - one target's toolchain failing ends its row, not the run
        failure = f"{type(error).__name__}: {errors.one_line(error)}"
        say(f"{int8.model}: {target.title} failed: {failure}")
        if target.reused:  # not retried until --rebuild
            artifacts.write_text(failure_path, f"{failure}\n")
        return Outcome(target, None, failure)
    failure_path.unlink(missing_ok=True)
    return Outcome(target, report)


def errors_of(accuracy_rows: typing.List[dict], artifact: str) -> dict:
    """The cm errors of ``artifact`` among a build's accuracy rows (None where it has none)."""
    found = next((row for row in accuracy_rows if row["artifact"] == artifact), {})
    return {key: found.get(key) for key in accuracy.ERRORS}


def target_row(outcome: Outcome, context: Context) -> dict:
    """The result row of one target for one build, from its report's headline."""
    name = outcome.target.name
    maker = _ROW_MAKERS.get(name, _generic_row)
    row = maker(outcome, context)
    if outcome.report is None:
        return {**row, "status": f"not compiled: {outcome.failure}"}
    headline = dataclasses.asdict(outcome.report.headline)
    return {**row, "headline": headline, "performance": row.get("performance") or headline["performance"]}


def _base_row(context, target, artifact, runtime):
    int8 = context.int8
    return benchmarks.result_row(model=int8.model, artifact=artifact, target=target, runtime=runtime,
                                 source=MEASURED, params=int8.params, macs=int8.macs,
                                 **errors_of(context.accuracy_rows, artifact))


def _generic_row(outcome, context):
    """A target without a table of its own: the headline says it all."""
    return {**_base_row(context, outcome.target.name, TFMOT_INT8, outcome.target.name),
            "file": str(context.int8.path), "bytes": context.int8.bytes, "status": NOT_MEASURED}


def _edgetpu_row(outcome, context):
    """Timed on the Edge TPU when one is attached (benchmarks.latency), with the pre-flight and
    compiler figures of compilers/edgetpu.py's report."""
    row = latency.edgetpu_row(context.int8, latency.compiled_model(context.folder), context.timing,
                              app_name="compare", device=context.device)
    row.update(errors_of(context.accuracy_rows, TFMOT_INT8))
    return {**row, **edgetpu_fields(outcome.report)} if outcome.report is not None else row


def edgetpu_fields(edgetpu_report) -> dict:
    """The Edge TPU pre-flight and compiler figures of a row, from compilers/edgetpu.py's report."""
    compiler = edgetpu_report.compiler
    return {"edgetpu_status": edgetpu_report.status_detail,
            "preflight": dataclasses.asdict(edgetpu_report.preflight),
            "compiler": compiler and {field.name: getattr(compiler, field.name)
                                      for field in dataclasses.fields(CompilerFigures)}}


def _imx500_row(outcome, context):
    """Memory figures and the MCT int8 error; its latency comes from the Pi (benchmarks.imx500_on_pi)."""
    row = _base_row(context, IMX500, MCT_INT8, ON_SENSOR)
    report = outcome.report
    if report is None:
        return row
    package = report.files["packer_zip"]
    row.update(file=str(context.folder / IMX500 / package.path), bytes=package.bytes,
               memory=dataclasses.asdict(report.memory), status=NOT_ON_PI)
    if not report.deployment.sensor_feeds_all_inputs:
        row["note"] = report.deployment.note
    return row


_ROW_MAKERS = {EDGETPU: _edgetpu_row, IMX500: _imx500_row}
