"""Arm Ethos-U adapter: turns an int8 TFLite into the Vela-optimized TFLite an Ethos-U NPU runs
(through TFLite Micro's ethos-u operator), with Arm's Vela compiler, and says what runs where,
what memory it takes and how fast Vela estimates it.

    python compilers/ethosu.py MODEL.tflite [-o DIR] [--accelerator NAME] [--system-config NAME]
                               [--memory-mode NAME] [--timeout S] [--overwrite] [--json]

The accelerators, system configurations and memory modes are Vela's own (its accelerator list and
the Arm/vela.ini in its wheel: compilers/ethosu/config.py); an unset system configuration or
memory mode is Vela's default for the accelerator. Vela runs in a child process with a timeout
(compilers/ethosu/run.py) with --verbose-performance; its summary CSV, per-layer CSV and the
reasons it prints for every operator left to the CPU make report.json
(compilers/ethosu/vela_output.py, placement.py).

Output, in DIR (default: BUILD/ethosu for a build's int8 model, else MODEL_DIR/NAME_ethosu):
NAME_vela.tflite, Vela's NAME_summary_SYSTEM.csv and NAME_per-layer.csv, vela.log (all it
printed) and report.json, made in a temporary folder beside DIR and published complete.

Exit status: 0 compiled; 1 Vela crashed, timed out or wrote what cannot be read, or writing the
output failed ("failed: ..."); 2 bad input, or Vela says in its own error what in the model or
configuration stops it (one line on stderr, nothing written).
"""
import dataclasses
import pathlib
import typing

from compilers.ethosu import config, performance, placement, run as vela_run, vela_output
from compilers.ethosu.report import EthosUReport
from compilers import common, targets
from compilers.report import Headline, performance_line
from compilers.common import MAX_TIMEOUT_S, timeout_seconds
from zoo import artifacts, tflite
from zoo.errors import ArgumentParser, UsageError, one_line_errors, progress

TARGET = "ethosu"
TOOL = targets.get(TARGET).tool  # what it writes, for zoo.artifacts' output-folder rule
LOG = "vela.log"


@dataclasses.dataclass(frozen=True)
class Options:
    """compile()'s Ethos-U options: Vela's accelerator, system configuration and memory mode
    (None: see compilers/ethosu/config.py) and the seconds before Vela is stopped."""
    accelerator: typing.Optional[str] = None
    system_config: typing.Optional[str] = None
    memory_mode: typing.Optional[str] = None
    timeout_s: float = 600


def _checked_options(options) -> typing.Tuple[config.Configuration, float]:
    settings = common.options_record(Options, options, "Ethos-U")
    return (config.resolve(settings.accelerator, settings.system_config, settings.memory_mode),
            timeout_seconds(settings.timeout_s))


def compile(model: "str | pathlib.Path", out_dir: "str | pathlib.Path | None" = None, *,
            overwrite: bool = False, progress: typing.Optional[typing.Callable[[str], None]] = None,
            **options) -> EthosUReport:
    """Compiles int8 TFLite ``model`` with Vela into ``out_dir`` (default BUILD/ethosu for a
    build's int8 model, else MODEL_DIR/STEM_ethosu) and returns the report. ``options``: Options'
    fields. Bad input, or a model Vela refuses in its own words, raises UsageError before anything
    is written; Vela failing otherwise raises VelaFailed, a write failing part-way WriteFailed;
    either way ``out_dir`` is left as it was."""
    say = progress or (lambda message: None)
    configuration, timeout_s = _checked_options(options)
    model = pathlib.Path(model)
    graph = common.read_checked_graph(model, placement.check_input)
    default = artifacts.compiler_output(model, TARGET)
    out_dir = artifacts.check_output(out_dir or default, TOOL, [model], overwrite, default)
    with artifacts.staged(out_dir, TOOL, [model], overwrite) as work_dir:  # nothing is said before it
        say(f"Vela {config.vela_version()}: {len(graph.operators)} operators of {model.name} for "
            f"{configuration.accelerator} ({configuration.system_config}, {configuration.memory_mode})")
        run = vela_run.compile_model(model.resolve(), configuration, work_dir, timeout_s)
        shown = [str(out_dir) if arg == str(work_dir) else arg for arg in run.command]  # where it ends up
        run = dataclasses.replace(run, command=shown)
        artifacts.write_text(work_dir / LOG, vela_output.log_text(run.output, run.per_layer_csv.name))
        report = _report(model, graph, out_dir, configuration, run)
        artifacts.write_record(report, work_dir / artifacts.REPORT)
    return report


def _report(model, graph, out_dir, configuration, run) -> EthosUReport:
    """The report of a finished Vela ``run``: its files read, the operators placed."""
    summary = vela_output.read_summary(run.summary_csv)
    layers = vela_output.read_layers(run.per_layer_csv)
    try:
        compiled = tflite.read_graph(run.vela_model)
    except UsageError as error:
        raise vela_output.VelaFailed(f"Vela wrote an unreadable {run.vela_model.name} ({error})") from None
    placed = placement.place(graph, layers, vela_output.cpu_reasons(run.output), compiled)
    version = config.vela_version()
    return EthosUReport(
        model=str(model), model_bytes=graph.file_bytes, out_dir=str(out_dir), vela_version=version,
        configuration=configuration, command=run.command, ops_total=len(graph.operators),
        ops_on_npu=len(graph.operators) - len(placed.cpu),
        npu_subgraphs=placed.npu_subgraphs, npu_operators=placed.npu, cpu_operators=placed.cpu,
        summary=summary, layers=layers, warnings=vela_output.notes(run.output) + placed.warnings,
        files={"vela_model": run.vela_model.name, "summary_csv": run.summary_csv.name,
               "per_layer_csv": run.per_layer_csv.name, "log": LOG},
        seconds=run.seconds,
        headline=Headline(
            target=TARGET, status="compiled", fits=_fits(summary, configuration),
            memory={f"{area}_bytes": used for area, used in summary.memory_used_bytes.items() if used},
            ops_total=len(graph.operators), ops_on_accelerator=len(graph.operators) - len(placed.cpu),
            performance=performance.estimate(summary, configuration, version, len(placed.cpu))))


def _fits(summary, configuration) -> typing.Optional[bool]:
    """Within the memory mode's SRAM limit; None when the mode sets none (the board's SRAM decides)."""
    if configuration.arena_limit_bytes is None:
        return None
    return summary.memory_used_bytes["sram"] <= configuration.arena_limit_bytes


# --- Command line -------------------------------------------------------------------------------

_AREA_TITLES = {"sram": "SRAM", "dram": "DRAM", "on_chip_flash": "on-chip flash",
                "off_chip_flash": "off-chip flash"}


def _summary(report: EthosUReport) -> str:
    """The short human summary printed after a run."""
    setup = report.configuration
    lines = [f"{pathlib.Path(report.model).name}: Vela {report.vela_version} for {setup.accelerator} "
             f"({setup.system_config}, {setup.memory_mode}, {setup.core_clock_hz / 1e6:g} MHz): "
             f"{report.ops_on_npu} of {report.ops_total} operators on the NPU in {report.npu_subgraphs} "
             f"command stream(s), {len(report.cpu_operators)} on the CPU"]
    lines += [f"    CPU: {row.op} -> {row.output!r}: {row.reason}" for row in report.cpu_operators]
    used = [f"{_AREA_TITLES[area]} {count / 1024:.1f} KiB"
            for area, count in report.summary.memory_used_bytes.items() if count]
    lines.append(f"  memory used: {', '.join(used) or 'none'}"
                 + (f" (memory mode limit {setup.arena_limit_bytes / 1024:.0f} KiB SRAM)"
                    if setup.arena_limit_bytes is not None else ""))
    lines.append(performance_line(report.headline.performance))
    lines += [f"  warning: {warning}" for warning in report.warnings]
    lines.append(f"wrote {pathlib.Path(report.out_dir) / artifacts.REPORT} and {report.files['vela_model']}")
    return "\n".join(lines)


def _parser() -> ArgumentParser:
    parser = common.adapter_parser(
        "ethosu",
        description="Compile an int8 TFLite for an Arm Ethos-U NPU with Vela: the optimized TFLite, "
                    "where every operator runs (with Vela's reasons for those left to the CPU), "
                    "SRAM and flash, and Vela's performance estimate.",
        epilog="exit status: 0 compiled; 1 Vela crashed, timed out or its output is unreadable, or writing "
               "failed; 2 bad input or a model Vela refuses (nothing written)")
    parser.add_argument("--accelerator", metavar="NAME",
                        help=f"Vela's accelerator configuration, one of {', '.join(config.accelerators())} "
                             f"(default {config.DEFAULT_ACCELERATOR}; BUILD_NOTES, Ethos-U target, says "
                             "why)")
    parser.add_argument("--system-config", metavar="NAME",
                        help=f"a system configuration of Vela's Arm/vela.ini: "
                             f"{', '.join(config.system_configs())} "
                             f"(default: Vela's own for the accelerator; with the memory mode: "
                             f"{config.defaults_text()})")
    parser.add_argument("--memory-mode", metavar="NAME",
                        help=f"a memory mode of Vela's Arm/vela.ini: {', '.join(config.memory_modes())} "
                             f"(default: Vela's own for the accelerator, as above)")
    parser.add_argument("--timeout", default="600", metavar="S",
                        help=f"seconds before Vela is stopped (default 600, at most {MAX_TIMEOUT_S})")
    return parser


@one_line_errors("compilers/ethosu.py", failures=(artifacts.WriteFailed, OSError, vela_output.VelaFailed))
def main(argv: "list[str] | None" = None) -> int:
    args = _parser().parse_args(argv)
    report = compile(args.model, out_dir=args.out, accelerator=args.accelerator,
                     system_config=args.system_config, memory_mode=args.memory_mode, timeout_s=args.timeout,
                     progress=progress, overwrite=args.overwrite)
    common.print_report(report, args.json, _summary)
    return 0
