"""Coral Edge TPU adapter: turns an int8 TFLite into NAME_edgetpu.tflite with Google's
`edgetpu_compiler`, and says before and after exactly what runs on the TPU.

    python compilers/edgetpu.py model.tflite [-o DIR] [--compiler PATH] [--min-runtime-version N]
                                [--timeout S] [--preflight-only] [--json]

Pre-flight (always; no compiler needed): reads the flatbuffer with zoo.tflite.read_graph and
predicts the compiler's placement of every operator in the compiler's own status words, from a
table of rules (compilers/edgetpu/rules.py) that each say whether they rest on Coral's
documentation, on what the compiler was seen to print, or on inference; then the compiler's single
partition (compilers/edgetpu/preflight.py). Operator versions compiler 16 cannot read are
reported as problems: the compiler refuses such a model.

Compile (when `edgetpu_compiler` is on PATH or given with --compiler): runs it with a timeout
(compilers/edgetpu/run.py), parses its stdout and NAME_edgetpu.log into the same report.json
(compilers/edgetpu/log.py), lists the operators left beside `edgetpu-custom-op` in the compiled
file, and warns where compiler and pre-flight disagree.

Output, in DIR (default: BUILD/edgetpu for a build's int8 model, else MODEL_DIR/NAME_edgetpu):
report.json, and when compiled NAME_edgetpu.tflite and NAME_edgetpu.log; made in a temporary folder
beside DIR and published complete (zoo.artifacts). An existing DIR is replaced only when this
project wrote it (else --overwrite); no file of anyone else's in DIR is removed.

Exit status:
  0  compiled
  1  the compiler ran and failed or timed out (report.json says why), or writing the output
     failed part-way ("failed: ..." on stderr)
  2  bad input: one line on stderr, nothing written
  3  pre-flight only: no compiler found (or --preflight-only); report.json has "compiler": null

From Python: compilers.edgetpu.compile(model, ...) returns the report; compiled_model(DIR) is the
NAME_edgetpu.tflite it left there (or None); make_interpreter(path) runs a compiled model on the
Edge TPU through libedgetpu.
"""
import dataclasses
import pathlib
import sys
import typing

from compilers.edgetpu import log as edgetpu_log, preflight as edgetpu_preflight, run as edgetpu_run
from compilers.edgetpu import performance
from compilers.edgetpu.report import EdgeTpuReport
from compilers import common, targets
from compilers.report import Headline, performance_line
from compilers.common import MAX_TIMEOUT_S, timeout_seconds
from zoo import artifacts
from zoo.errors import UsageError, one_line_errors, progress


TARGET = "edgetpu"
TOOL = targets.get(TARGET).tool  # what it writes, for zoo.artifacts' output-folder rule
_EXIT_CODES = {"compiled": 0, "failed": 1, "preflight-only": 3}  # report["status"] -> exit status
_INSTALL_HINT = ("install it on x86-64 Debian/Ubuntu from Coral's apt repository "
                 "(deb https://packages.cloud.google.com/apt coral-edgetpu-stable main; "
                 "apt-get install edgetpu-compiler) or pass --compiler PATH")


def _runtime_version(value):
    """``value`` as a positive whole runtime version (the compiler's -m), or None."""
    if value is None:
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise UsageError(f"--min-runtime-version {value}: give a positive whole runtime version, e.g. 13")
    return int(text)


def _status(preflight_only, compiler_path, result):
    """report["status"] and its one-line detail."""
    if result is not None:
        return ("failed", result.error) if result.error else \
            ("compiled", f"compiled {result.edgetpu_model}")
    if preflight_only:
        return "preflight-only", "pre-flight only (--preflight-only)"
    return "preflight-only", f"{edgetpu_run.COMPILER} not found on PATH: pre-flight only; {_INSTALL_HINT}"


@dataclasses.dataclass(frozen=True)
class Options:
    """compile()'s Edge TPU options. ``compiler``: path of edgetpu_compiler (default: looked up
    on PATH); ``min_runtime_version``: the compiler's -m; ``timeout_s``: seconds before the
    compiler is stopped."""
    compiler: typing.Optional[str] = None
    min_runtime_version: typing.Optional[int] = None
    timeout_s: float = 600
    preflight_only: bool = False


def compile(model: "str | pathlib.Path", out_dir: "str | pathlib.Path | None" = None, *,
            overwrite: bool = False, progress: typing.Optional[typing.Callable[[str], None]] = None,
            **options) -> EdgeTpuReport:
    """Pre-flight check of int8 TFLite ``model`` and, when a compiler is found, the compile.

    Writes report.json (and NAME_edgetpu.tflite/.log when compiled) into ``out_dir`` (default
    BUILD/edgetpu for a build's int8 model, else MODEL_DIR/STEM_edgetpu) and returns the report;
    its status is "compiled", "failed" or "preflight-only". ``options``: Options' fields. Bad input
    raises UsageError before anything is written; a write failing part-way raises WriteFailed and
    leaves ``out_dir`` as it was."""
    say = progress or (lambda message: None)
    settings = _checked_options(options)
    model = pathlib.Path(model)
    graph = common.read_checked_graph(model, edgetpu_preflight.check_input)
    default = artifacts.compiler_output(model, TARGET)
    out_dir = artifacts.check_output(out_dir or default, TOOL, [model], overwrite, default)
    compiler_path = None if settings.preflight_only else edgetpu_run.find_compiler(settings.compiler)
    with artifacts.staged(out_dir, TOOL, [model], overwrite) as work_dir:  # nothing is said before it
        say(f"pre-flight: {len(graph.operators)} operators in {model.name}")
        preflight = edgetpu_preflight.preflight(graph)
        result = None
        if compiler_path is not None:
            say(f"compiling with {compiler_path} (timeout {settings.timeout_s:g} s)")
            result = edgetpu_run.compile_model(compiler_path, model.resolve(), work_dir,
                                               settings.min_runtime_version, settings.timeout_s)
        status, detail = _status(settings.preflight_only, compiler_path, result)
        report = EdgeTpuReport(
            model=str(model), model_bytes=graph.file_bytes, out_dir=str(out_dir), preflight=preflight,
            compiler=result, status=status, status_detail=detail,
            disagreements=(edgetpu_log.disagreements(preflight, result)
                           if result and not result.error else []),
            headline=_headline(status, graph, preflight, result))
        artifacts.write_record(report, work_dir / artifacts.REPORT)
    return report


def _checked_options(options):
    """Options from compile()'s keywords, each checked (UsageError for a bad one)."""
    settings = common.options_record(Options, options, "Edge TPU")
    return dataclasses.replace(settings, timeout_s=timeout_seconds(settings.timeout_s),
                               min_runtime_version=_runtime_version(settings.min_runtime_version))


def _headline(status, graph, preflight, result):
    """The figures every target reports; the compiler's where it ran, else the pre-flight's."""
    compiled = result is not None and not result.error
    total, on_tpu = ((result.ops_total, result.ops_on_tpu) if compiled
                     else (preflight.ops_total, preflight.ops_on_tpu))
    memory = ({"on_chip_bytes": result.on_chip_bytes or 0, "off_chip_bytes": result.off_chip_bytes or 0}
              if compiled else {"param_bytes_on_chip": preflight.param_bytes_on_chip,
                                "param_bytes_streamed": preflight.param_bytes_streamed})
    streamed = memory.get("off_chip_bytes", memory.get("param_bytes_streamed"))
    return Headline(target=TARGET, status=status, fits=not streamed, memory=memory,
                    ops_total=total, ops_on_accelerator=on_tpu,
                    performance=performance.estimate(graph, preflight))


# --- Command line -------------------------------------------------------------------------------


def _human_bytes(count):
    for unit in ("B", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1024


def _cpu_lines(rows):
    """One line per CPU row (OperationRow, CpuOperators); the pre-flight's rows also say what the
    prediction rests on."""
    return [f"    {row.op} x{row.count}: {row.status}"
            + (f" [{row.basis}: {row.rule}]" if getattr(row, "rule", None) else "") for row in rows]


def _preflight_lines(report):
    pre = report.preflight
    lines = [f"{pathlib.Path(report.model).name}: pre-flight predicts {pre.ops_on_tpu} of "
             f"{pre.ops_total} operators on the Edge TPU in {pre.subgraphs} subgraph(s), "
             f"{pre.ops_on_cpu} on the CPU"]
    if pre.partition_at:
        stop = pre.partition_at
        lines.append(f"  the TPU part ends at operator #{stop.index} {stop.op} ({stop.status}; "
                     f"{stop.basis} rule {stop.rule})")
    lines += _cpu_lines(pre.cpu_ops)
    lines.append(f"  parameters on the TPU: {_human_bytes(pre.param_bytes)}; estimate "
                 f"{_human_bytes(pre.param_bytes_on_chip)} cached on chip, "
                 f"{_human_bytes(pre.param_bytes_streamed)} streamed "
                 f"(~{_human_bytes(pre.on_chip_budget_bytes)} SRAM, shared with activations)")
    lines += [f"  problem: {problem}" for problem in pre.problems]
    return lines + [f"  warning: {warning}" for warning in pre.warnings]


def _summary(report):
    """The short human summary printed after a run."""
    lines = _preflight_lines(report)
    compiler = report.compiler
    if compiler and not compiler.error:
        lines.append(f"compiler {compiler.version}: {compiler.ops_on_tpu} of {compiler.ops_total} "
                     f"operations on the Edge TPU in {compiler.subgraphs} subgraph(s); parameters "
                     f"{_human_bytes(compiler.on_chip_bytes or 0)} on chip, "
                     f"{_human_bytes(compiler.off_chip_bytes or 0)} streamed")
        lines += _cpu_lines(compiler.cpu_ops or [])
    elif compiler:
        lines.append(f"compiler {compiler.version or ''} failed: {compiler.error}")
    lines.append(performance_line(report.headline.performance))
    lines.append(f"wrote {pathlib.Path(report.out_dir) / artifacts.REPORT}"
                 + (f" and {compiler.edgetpu_model}" if compiler and compiler.edgetpu_model else ""))
    return "\n".join(lines)


def _parser():
    parser = common.adapter_parser(
        "edgetpu",
        description="Compile an int8 TFLite for the Coral Edge TPU, with a pre-flight check "
                    "(no compiler needed) that predicts which operators run on the TPU and why "
                    "the others stay on the CPU.",
        epilog="exit status: 0 compiled; 1 the compiler failed or timed out, or writing failed; "
               "2 bad input (nothing written); 3 pre-flight only (no compiler found, or --preflight-only)")
    parser.add_argument("--compiler", help=f"path of {edgetpu_run.COMPILER} (default: found on PATH)")
    parser.add_argument("--min-runtime-version", metavar="N",
                        help="oldest Edge TPU runtime the model must run on (the compiler's -m), e.g. 13")
    parser.add_argument("--timeout", default="600", metavar="S",
                        help=f"seconds before the compiler is stopped (default 600, at most {MAX_TIMEOUT_S})")
    parser.add_argument("--preflight-only", action="store_true", help="do not run the compiler")
    return parser


@one_line_errors("compilers/edgetpu.py", failures=(artifacts.WriteFailed, OSError))
def main(argv: "list[str] | None" = None) -> int:
    args = _parser().parse_args(argv)
    report = compile(args.model, out_dir=args.out, compiler=args.compiler,
                     min_runtime_version=args.min_runtime_version, timeout_s=args.timeout,
                     preflight_only=args.preflight_only, progress=progress, overwrite=args.overwrite)
    common.print_report(report, args.json, _summary)
    for disagreement in report.disagreements:
        print(f"warning: {disagreement}", file=sys.stderr)
    if report.status != "compiled":
        print(report.status_detail, file=sys.stderr)
    return _EXIT_CODES[report.status]
