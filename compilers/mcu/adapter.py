"""Microcontroller adapter (TFLite Micro): what a microcontroller build of any int8 TFLite needs.

    python compilers/mcu.py MODEL.tflite [-o DIR] [--board NAME] [--calibration-data PATH]
                            [--overwrite] [--json]

- The tensor arena, measured by the tflite-micro interpreter (compilers/mcu/tflm.py says how);
  flash: the model's bytes.
- model_data.cc / model_data.h: the model as a 16-byte aligned C array with its length;
  model_ops.h: the tflite::MicroMutableOpResolver<N> registering exactly the model's operators
  (N distinct), and the measured arena size.
- Whether it fits each board of compilers/mcu/boards.py (RAM and flash from the makers' documents,
  cited); --board picks the headline's (default: the Sony Spresense, the microcontroller the
  TinyTracker papers measured on). Not fitting any board is a result, not an error.
- TFLite Micro's outputs against LiteRT's reference kernels and its default (XNNPACK) on real
  inputs (compilers/mcu/inputs.py): bit-exact, or the largest difference in output steps.
- Latency only where a published measurement supports it (compilers/mcu/performance.py).

Output, in DIR (default: BUILD/mcu for a build's int8 model, else MODEL_DIR/STEM_mcu): the three
sources and report.json, made in a temporary folder and published complete (zoo.artifacts).
Exit status: 0 built; 1 a runtime failed unexpectedly or writing failed; 2 bad input (a float or
foreign file, an operator TFLite Micro has no kernel for, no real inputs to compare on): one line,
nothing written.
"""
import dataclasses
import importlib.metadata
import pathlib
import time
import typing

import numpy as np

from compilers.mcu import agreement as agreement_module, boards, inputs, ops, performance, sources, tflm
from compilers.mcu.report import McuReport
from compilers import common, targets
from compilers.report import Headline, performance_line
from zoo import artifacts
from zoo.errors import ArgumentParser, UsageError, one_line_errors, progress

TARGET = "mcu"
TOOL = targets.get(TARGET).tool  # what it writes, for zoo.artifacts' output-folder rule
_QUANTIZED_TYPES = ("int8", "uint8", "int16")


@dataclasses.dataclass(frozen=True)
class Options:
    """compile()'s microcontroller options: ``board`` for the headline (every board is reported);
    ``calibration_data``: a folder of photos, a GazeCapture root or a .npz file (default: a zoo
    model's own data)."""
    board: str = boards.DEFAULT_BOARD
    calibration_data: typing.Optional[str] = None


@dataclasses.dataclass
class _Plan:
    """Everything compile() checked before writing anything."""
    model: pathlib.Path
    data: bytes
    graph: object
    operators: typing.List[ops.OperatorUse]
    allocation: tflm.Allocation
    slots: typing.List[inputs.Slot]
    card: object
    source: object


def _checked_options(options) -> Options:
    settings = common.options_record(Options, options, "microcontroller")
    boards.get(settings.board)
    return settings


def _read_model(model: pathlib.Path):
    """The model's graph; UsageError for an unreadable, foreign or float file."""
    return common.read_checked_graph(model, lambda graph: _check_quantized(model, graph))


def _check_quantized(model, graph):
    if not any(t.quantized and t.dtype in _QUANTIZED_TYPES for t in graph.tensors if not t.is_constant):
        raise UsageError(f"{model} is a float model (no quantized activations); microcontrollers run "
                         "full-integer models: convert with a representative dataset and "
                         "TFLITE_BUILTINS_INT8")


def _plan(model: pathlib.Path, settings: Options) -> _Plan:
    """Every check before any output: the file, its operators, TFLite Micro's allocation, the data."""
    graph = _read_model(model)
    operators = ops.model_operators(model)
    data, slots = model.read_bytes(), inputs.slots(model, graph)
    try:
        allocation = tflm.allocate(data)
        # Kernels check their input types at run time too: an all-zero frame finds such a refusal
        # now, before anything is said or written (no figure comes from it).
        tflm.invoke(allocation.interpreter, [np.zeros(s.shape, s.dtype) for s in slots], len(graph.outputs))
    except tflm.TflmError as error:
        raise tflm.refusal(str(model), graph.tensors, error) from None
    card = artifacts.read_model_card(model)
    source = inputs.resolve(model, slots, card, settings.calibration_data)
    return _Plan(model, data, graph, operators, allocation, slots, card, source)


def _output_names(plan: _Plan) -> typing.List[str]:
    from zoo.tflite import signature_names
    names = signature_names(plan.model)
    return [names.get(index) or plan.graph.tensors[index].name for index in plan.graph.outputs]


def _run(plan: _Plan, say) -> typing.Tuple[tflm.ArenaRecord, agreement_module.Agreement, dict]:
    """The arena, verified on the first real frame, and TFLite Micro against LiteRT on every frame."""
    seconds, start = {}, time.monotonic()
    say(f"making the comparison frames: {plan.source.describe()}")
    frames = plan.source.frames()
    seconds["frames"], start = time.monotonic() - start, time.monotonic()
    outputs = len(plan.graph.outputs)
    try:
        arena = tflm.arena_record(plan.data, plan.allocation, frames[0], outputs)
        say(f"arena measured: {arena.bytes:,} bytes; running {len(frames)} frames on TFLite Micro and LiteRT")
        ours = [tflm.invoke(plan.allocation.interpreter, frame, outputs) for frame in frames]
    except tflm.TflmError as error:
        raise tflm.refusal(str(plan.model), plan.graph.tensors, error) from None
    seconds["tflite_micro"], start = time.monotonic() - start, time.monotonic()
    theirs = {resolver: agreement_module.run_litert(str(plan.model), resolver, frames)
              for resolver in (agreement_module.REFERENCE, agreement_module.DEFAULT)}
    seconds["litert"] = time.monotonic() - start
    found = agreement_module.compare(plan.graph, _output_names(plan), ours, theirs, plan.source.describe())
    return arena, found, {key: round(value, 2) for key, value in seconds.items()}


def _write_sources(work: pathlib.Path, plan: _Plan, arena: tflm.ArenaRecord) -> dict:
    """The three sources in ``work``; their file records by kind."""
    from zoo.artifacts.files import file_record, sha256
    methods = [operator.method for operator in plan.operators]
    texts = {
        "model_data_h": (sources.MODEL_DATA_H, sources.model_data_h(plan.model)),
        "model_data_cc": (sources.MODEL_DATA_CC,
                          sources.model_data_cc(plan.model, plan.data, sha256(plan.model))),
        "model_ops_h": (sources.MODEL_OPS_H, sources.model_ops_h(plan.model, methods, arena.bytes))}
    for name, text in texts.values():
        artifacts.write_text(work / name, text)
    return {kind: artifacts.FileRecord(**file_record(work / name, work)) for kind, (name, _) in texts.items()}


def _toolchain() -> typing.Dict[str, str]:
    return {package: importlib.metadata.version(package) for package in ("tflite-micro", "ai-edge-litert")}


def _report(plan: _Plan, settings: Options, out_dir, found) -> McuReport:
    arena, agreement, files, seconds = found
    fits = [boards.fit(board, arena.bytes, len(plan.data)) for board in boards.BOARDS.values()]
    chosen = next(fit for fit in fits if fit.board == settings.board)
    total = sum(o.count for o in plan.operators)
    return McuReport(
        model=str(plan.model), out_dir=str(out_dir), flash_bytes=len(plan.data), operators=plan.operators,
        operator_count=len(plan.operators), resolver=f"tflite::MicroMutableOpResolver<{len(plan.operators)}>",
        arena=arena, board=settings.board, boards=fits, agreement=agreement, files=files,
        toolchain=_toolchain(), seconds=seconds, status="built",
        headline=Headline(target=TARGET, status="built", fits=chosen.fits,
                          memory={"arena_bytes": arena.bytes, "flash_bytes": len(plan.data),
                                  "ram_needed_bytes": chosen.ram_needed_bytes,
                                  "board_ram_bytes": chosen.ram_bytes,
                                  "board_flash_bytes": chosen.flash_bytes},
                          ops_total=total, ops_on_accelerator=total,
                          performance=performance.estimate(plan.card, settings.board)))


def compile(model: "str | pathlib.Path", out_dir: "str | pathlib.Path | None" = None, *,
            overwrite: bool = False, progress: typing.Optional[typing.Callable[[str], None]] = None,
            **options) -> McuReport:
    """What a microcontroller build of int8 TFLite ``model`` needs (see the module), written to
    ``out_dir`` (default BUILD/mcu for a build's int8 model, else MODEL_DIR/STEM_mcu); the report.
    ``options``: Options' fields. Bad input raises UsageError before anything is written."""
    say = progress or (lambda message: None)
    settings = _checked_options(options)
    model = pathlib.Path(model)
    plan = _plan(model, settings)
    default = artifacts.compiler_output(model, TARGET)
    out_dir = artifacts.check_output(out_dir or default, TOOL, [model], overwrite, default)
    arena, agreement, seconds = _run(plan, say)
    with artifacts.staged(out_dir, TOOL, [model], overwrite) as work:
        files = _write_sources(work, plan, arena)
        report = _report(plan, settings, out_dir, (arena, agreement, files, seconds))
        artifacts.write_record(report, work / artifacts.REPORT)
    return report


# --- Command line -------------------------------------------------------------------------------


def _steps_text(agreement, resolver: str) -> str:
    if agreement.bit_exact[resolver]:
        return "bit-exact"
    steps = agreement.max_steps[resolver]
    return (f"max {steps} output step{'s' if steps != 1 else ''}" if steps is not None else
            f"max |difference| {max(o.max_abs[resolver] for o in agreement.outputs):.3g} (float output)")


def _summary(report: McuReport) -> str:
    arena, names = report.arena, ", ".join(f"{o.name} x{o.count}" for o in report.operators)
    lines = [f"{pathlib.Path(report.model).name} on TFLite Micro: arena {arena.bytes:,} bytes (measured: "
             f"head {arena.head_bytes:,} + tail {arena.tail_bytes:,}), flash {report.flash_bytes:,} bytes "
             "(the model)",
             f"  {report.operator_count} operators ({names}) -> {report.resolver}"]
    for fit in report.boards:
        mark = "*" if fit.board == report.board else " "
        verdict = "fits" if fit.fits else "does not fit" + (
            " (fits with its RAM setting at the largest)" if fit.fits_at_max else "")
        lines.append(f" {mark}{fit.name}: RAM {fit.ram_needed_bytes:,} of {fit.ram_bytes:,}, flash "
                     f"{fit.flash_needed_bytes:,} of {fit.flash_bytes:,}: {verdict}")
    agreement = report.agreement
    lines.append(f"  TFLite Micro vs LiteRT on {agreement.frames} frames ({agreement.data}): reference "
                 f"kernels {_steps_text(agreement, agreement_module.REFERENCE)}; default (XNNPACK) "
                 f"{_steps_text(agreement, agreement_module.DEFAULT)}")
    lines.append(performance_line(report.headline.performance))
    written = ", ".join(record.path for record in report.files.values())
    lines.append(f"wrote {written} and report.json in {report.out_dir}")
    return "\n".join(lines)


def _parser() -> ArgumentParser:
    parser = common.adapter_parser(
        "mcu",
        description="What a microcontroller build of an int8 TFLite needs with TFLite Micro: the tensor "
                    "arena measured by the tflite-micro interpreter, the model as a C array, the exact op "
                    "resolver, whether it fits each board, and TFLite Micro's outputs against LiteRT's on "
                    "real inputs.",
        epilog="exit status: 0 built (fitting no board is a result, not an error); 1 a runtime or a write "
               "failed; 2 bad input (nothing written)")
    parser.add_argument("--board", default=boards.DEFAULT_BOARD, choices=list(boards.BOARDS),
                        help=f"the board of the headline; every board is in the report (default "
                             f"{boards.DEFAULT_BOARD}, the microcontroller the TinyTracker papers measured "
                             "on)")
    parser.add_argument("--calibration-data", metavar="PATH",
                        help="real inputs to compare TFLite Micro with LiteRT on: a folder of photos, a "
                             "GazeCapture root (zoo models) or a .npz file of one array per input; default: "
                             "a zoo model's own data (required for any other file)")
    return parser


@one_line_errors("compilers/mcu.py", failures=(artifacts.WriteFailed, OSError))
def main(argv: "list[str] | None" = None) -> int:
    args = _parser().parse_args(argv)
    report = compile(args.model, out_dir=args.out, board=args.board, calibration_data=args.calibration_data,
                     progress=progress, overwrite=args.overwrite)
    common.print_report(report, args.json, _summary)
    return 0
