"""RESULTS.md and the plots of benchmarks.compare, from its results.json: rendered again by
`python -m benchmarks.compare --report_only` after rows were added (benchmarks.imx500_on_pi).

Every latency shown says what it rests on (performance_of): measured here, else the target's own
performance section (an estimate with its basis, or a published figure with its citation).

The report files are made in a temporary folder inside --out and moved in complete, results.json
last: a reader never sees a half-written file, and a results.json always has its report beside it.
"""
import os

import benchmarks
from benchmarks import CPU, EDGETPU, FLOAT, IMX500, MCT_INT8, MEASURED, PTQ_INT8, PUBLISHED, TFMOT_INT8
from benchmarks.results import Results, read_results, row_fields, write_results
from compilers.report import ESTIMATED, Performance
from zoo import artifacts
from zoo.errors import UsageError
from zoo.inference.metrics import MEAN_BASELINE

RESULTS, REPORT = "results.json", "RESULTS.md"
PLOTS = {"error_vs_size": "error_vs_size.png", "latency": "latency.png",
         "error_vs_latency": "error_vs_latency.png"}


MEASURED_TABLE = ("model", "artifact", "target", "runtime", "threads", "latency_ms_median",
                  "latency_ms_p90", "fps", "vs_reference", "cm", "cm_phone", "cm_tablet", "bytes",
                  "params", "macs", "status")
PUBLISHED_TABLE = ("model", "artifact", "target", "runtime", "latency_ms_median", "cm", "cm_phone",
                   "cm_tablet", "bytes", "params", "macs")


def measured_rows(rows):
    """The rows measured here, without the mean predictor's."""
    return [row for row in rows if row.source == MEASURED and row.artifact != MEAN_BASELINE]


def performance_of(row):
    """The latency of ``row`` and its basis (compilers.report.Performance): its own timing where
    it has one (measured here, merged in by benchmarks.imx500_on_pi, or a published row's), else
    the target's performance section; None where neither gives a latency."""
    own = row.performance
    if row.latency_ms_median is None:
        return own if own is not None and own.latency_ms is not None else None
    if own is not None and own.kind == MEASURED:
        return own
    if row.source == PUBLISHED:
        return Performance(PUBLISHED, row.latency_ms_median, row.fps, row.citation or "")
    return Performance(MEASURED, row.latency_ms_median, row.fps,
                       f"measured: median of {row.runs} runs ({row.runtime})")


def _latency_cell(row):
    if row.latency_ms_median is None:
        return row.status
    return f"{row.latency_ms_median:.3f} ms median, {row.latency_ms_p90:.3f} ms p90"


def _edgetpu_table(rows):
    lines = ["| model | operators on the TPU | CPU operators (why) | subgraphs | parameter bytes | "
             "compiler | latency |", "|" + " --- |" * 7]
    for row in rows:
        if row.target != EDGETPU or row.preflight is None:
            continue
        pre, compiler = row.preflight, row.compiler
        cpu = "; ".join(f"{op.op} x{op.count} ({op.status})" for op in pre.cpu_ops) or "none"
        compiled = (f"{compiler.version}: {compiler.ops_on_tpu}/{compiler.ops_total} on the TPU"
                    if compiler and not compiler.error else
                    f"failed: {compiler.error}" if compiler else "not installed (pre-flight only)")
        lines.append(f"| {row.model} | {pre.ops_on_tpu}/{pre.ops_total} | {cpu} | "
                     f"{pre.subgraphs} | {pre.param_bytes:,} | {compiled} | {_latency_cell(row)} |")
    return "\n".join(lines)


def _imx500_table(rows):
    lines = ["| model | memory used (bytes) | available (bytes) | utilization | fits | MCT int8 cm | "
             "latency | note |", "|" + " --- |" * 8]
    for row in rows:
        if row.target != IMX500 or row.source != MEASURED:
            continue
        memory = row.memory
        figures = (f"{memory['usage_bytes']:,} | {memory['available_bytes']:,} | "
                   f"{memory['utilization']:.1%} | {'yes' if memory['fit_in_chip'] else 'no'}"
                   if memory else "- | - | - | -")
        cm = benchmarks.cell(row_fields(row), "cm")
        lines.append(f"| {row.model} | {figures} | {cm} | {_latency_cell(row)} | {row.note or ''} |")
    return "\n".join(lines)


def target_rows(rows):
    """The rows of the targets of compilers.targets (each with its report's headline, or why it
    has none), measured here."""
    return [row for row in rows if row.source == MEASURED and row.target not in (CPU, None)]


def _cell_text(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _target_cells(row):
    """model, target, status, fits, memory, operators on the accelerator, latency and its basis."""
    headline = row.headline
    if headline is None:
        return [row.model, row.target, row.status, "-", "-", "-", "-", "-"]
    memory = "; ".join(f"{name.removesuffix('_bytes').replace('_', ' ')} {value:,} B"
                       for name, value in headline.memory.items()) or "-"
    on = headline.ops_on_accelerator
    performance = performance_of(row) or headline.performance
    latency = (f"{performance.latency_ms:.3g} ms ({performance.kind})"
               if performance.latency_ms is not None else "no estimate")
    fits = {True: "yes", False: "no", None: "unknown"}[headline.fits]
    return [row.model, row.target, headline.status, fits, memory,
            f"{'?' if on is None else on}/{headline.ops_total}", latency, performance.basis]


def _targets_table(rows):
    """Every target's headline side by side, then the sources its latencies cite."""
    lines = ["| model | target | status | fits | memory | operators on the accelerator | latency | basis |",
             "|" + " --- |" * 8]
    lines += ["| " + " | ".join(_cell_text(cell) for cell in _target_cells(row)) + " |"
              for row in target_rows(rows)]
    sections = [performance_of(row) or row.performance for row in target_rows(rows)]
    sources = dict.fromkeys(citation for section in sections if section for citation in section.citations)
    return "\n".join(lines + ([""] + [f"- {citation}" for citation in sources] if sources else []))


def _speedup_table(rows):
    """int8 over float on the CPU, per model and runtime (from the rows above)."""
    lines = ["| model | runtime | float ms | tfmot int8 ms | PTQ int8 ms | float / tfmot int8 |",
             "|" + " --- |" * 6]
    cpu = {(r.model, r.runtime, r.artifact): r.latency_ms_median
           for r in rows if r.target == CPU and r.source == MEASURED}
    for model, runtime in dict.fromkeys((m, rt) for m, rt, a in cpu if a == FLOAT):
        float_ms, int8_ms, ptq_ms = (cpu.get((model, runtime, a)) for a in (FLOAT, TFMOT_INT8, PTQ_INT8))
        ratio = f"{float_ms / int8_ms:.2f}x" if float_ms and int8_ms else "-"
        cells = [f"{v:.3f}" if v else "-" for v in (float_ms, int8_ms, ptq_ms)]
        lines.append(f"| {model} | {runtime} | {' | '.join(cells)} | {ratio} |")
    return "\n".join(lines)


def render_markdown(results):
    rows = results.rows
    measured = measured_rows(rows)
    machine = results.machine
    baselines = [row for row in rows if row.artifact == MEAN_BASELINE]
    published = [row for row in rows if row.source == PUBLISHED]
    parts = [
        "# Results",
        f"Command: `{results.command}` ({results.created}, "
        f"{results.seconds['total'] / 60:.1f} min).",
        f"Machine: {machine.cpu}, {machine.cores} cores, {machine.system}; 1-minute load "
        f"average {machine.load_average[0]:.2f} at the start"
        + (f", {machine.load_average_end[0]:.2f} at the end" if machine.load_average_end else "")
        + f". Data: `{results.data['root']}` "
        f"(test split). Latency: {results.timing.threads} thread(s), median of up to "
        f"{results.timing.num_runs} runs after {results.timing.warmup} warm-up runs; "
        f"'x reference' is the ratio to `{results.timing.reference or 'none'}` timed right before "
        "each row in the same process.",
        "## Measured here",
        benchmarks.markdown_table([row_fields(row) for row in measured], MEASURED_TABLE),
        "Mean predictor (always the training mean; the floor to beat): " +
        ", ".join(f"{row.model} {row.cm:.3f} cm" for row in baselines) + ".",
        "## int8 speed-up over float on the CPU",
        _speedup_table(rows),
    ]
    if target_rows(rows):
        parts += ["## Targets", "Each target's report (`compilers/<target>.py`): whether the model fits, "
                  "the memory it takes, how many of its operators the accelerator runs, and its latency with "
                  "what that rests on.", _targets_table(rows)]
    if any(row.target == EDGETPU for row in measured):
        parts += ["## Edge TPU", _edgetpu_table(measured)]
    if any(row.target == IMX500 for row in measured):
        parts += ["## IMX500", _imx500_table(measured)]
    if published:
        parts += ["## Published (not measured here)",
                  benchmarks.markdown_table([row_fields(row) for row in published], PUBLISHED_TABLE),
                  "\n".join(f"- {row.model}: {row.note}. {row.citation}." for row in published)]
    parts += ["## Plots"] + [f"![{name}]({file})" for name, file in PLOTS.items()]
    return "\n\n".join(parts) + "\n"


def render_plots(results, folder):
    """The plots of PLOTS in ``folder``."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = results.rows
    colours = {model: f"C{index}" for index, model in enumerate(sorted({row.model for row in rows}))}
    for plot, name in ((_error_vs_size, "error_vs_size"), (_latency_plot, "latency"),
                       (_error_vs_latency, "error_vs_latency")):
        figure = plot(pyplot, rows, colours, results)
        try:
            figure.tight_layout()
            figure.savefig(folder / PLOTS[name], dpi=110)
        finally:
            pyplot.close(figure)


def _error_vs_size(pyplot, rows, colours, results):
    markers = {FLOAT: "o", TFMOT_INT8: "s", PTQ_INT8: "^", MCT_INT8: "D"}
    figure, axes = pyplot.subplots(figsize=(8, 5.5))
    seen = set()
    for row in rows:
        cm, phone_only = row.cm, row.cm is None and row.cm_phone is not None
        cm = row.cm_phone if phone_only else cm  # a paper that gives phone and tablet only
        key = (row.source, row.model, row.artifact)
        if cm is None or not row.bytes or key in seen or row.artifact == MEAN_BASELINE:
            continue
        seen.add(key)
        published = row.source == PUBLISHED
        axes.scatter(row.bytes, cm, s=60, marker=markers.get(row.artifact, "*"),
                     facecolors="none" if published else colours[row.model],
                     edgecolors=colours[row.model])
        axes.annotate(f"{row.model} {row.artifact or ''}{' (published)' if published else ''}"
                      f"{' phone' if phone_only else ''}",
                      (row.bytes, cm), fontsize=7, xytext=(4, 3), textcoords="offset points")
    for row in rows:
        if row.artifact == MEAN_BASELINE:
            axes.axhline(row.cm, color=colours[row.model], linestyle="--", linewidth=0.8)
            axes.annotate(f"{row.model} mean predictor", (0.01, row.cm), fontsize=7,
                          xycoords=("axes fraction", "data"), xytext=(0, 3), textcoords="offset points")
    axes.set_xscale("log")
    axes.set_xlabel("model file size (bytes; IMX500: packerOut.zip)")
    axes.set_ylabel("test error (cm)")
    axes.set_title("Error vs size (filled: measured here; hollow: published; dashed: mean predictor)")
    axes.grid(True, which="both", alpha=0.3)
    return figure


# How the latency plot marks a latency's basis.
HATCHES = {MEASURED: None, ESTIMATED: "xx", PUBLISHED: "//"}


def _latency_plot(pyplot, rows, colours, results):
    timed = [(row, performance_of(row)) for row in rows if performance_of(row)]
    figure, axes = pyplot.subplots(figsize=(8, 0.8 + 0.28 * max(len(timed), 1)))
    labels = []
    for index, (row, performance) in enumerate(timed):
        kind = performance.kind
        axes.barh(index, performance.latency_ms, color=colours[row.model], edgecolor="black",
                  linewidth=0.3, hatch=HATCHES.get(kind), alpha=1.0 if kind == MEASURED else 0.5)
        labels.append(f"{row.model} {row.artifact or ''} {row.target or ''}/{row.runtime or ''}"
                      + ("" if kind == MEASURED else f" ({kind})"))
    axes.set_yticks(range(len(timed)), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel(f"latency per frame (ms, log scale; CPU: median with {results.timing.threads} "
                    "thread(s))\nsolid: measured here; crossed: estimated; hatched: published")
    axes.set_title("Latency per model and runtime")
    axes.grid(True, axis="x", which="both", alpha=0.3)
    return figure


def _error_latency_points(rows):
    """(row, performance) of every row the error-vs-latency plot shows: each target's row, the CPU
    rows of the int8 model the targets compile, and published rows with both figures."""
    points = []
    for row in rows:
        performance = performance_of(row)
        shown = row.target not in (CPU, None) or (row.target == CPU and row.artifact == TFMOT_INT8)
        if performance and row.cm is not None and shown:
            points.append((row, performance))
    return points


# How the error-vs-latency plot marks a latency's basis.
FILLS = {MEASURED: "full", ESTIMATED: "none", PUBLISHED: "left"}


def _error_vs_latency(pyplot, rows, colours, results):
    """The paper's comparison in one picture: cm error against latency, one marker per target,
    filled where measured here, hollow where estimated, half-filled where published."""
    from matplotlib.lines import Line2D
    points = _error_latency_points(rows)
    targets = list(dict.fromkeys(row.target for row, _ in points))
    markers = dict(zip(targets, "osD^vPX*hp"))
    figure, axes = pyplot.subplots(figsize=(8, 5.5))
    for row, performance in points:
        axes.plot(performance.latency_ms, row.cm, marker=markers[row.target], markersize=9,
                  linestyle="", color=colours[row.model], fillstyle=FILLS.get(performance.kind, "none"))
        label = f"{row.model} {row.target}" + (f"/{row.runtime}" if row.target == CPU else "")
        axes.annotate(label, (performance.latency_ms, row.cm), fontsize=7, xytext=(5, 4),
                      textcoords="offset points")
    handles = [Line2D([], [], marker=markers[t], linestyle="", color="grey", label=t) for t in targets]
    handles += [Line2D([], [], marker="o", linestyle="", color="grey", fillstyle=FILLS[kind], label=label)
                for kind, label in ((MEASURED, "measured here"), (ESTIMATED, "estimated"),
                                    (PUBLISHED, "published"))]
    axes.legend(handles=handles, fontsize=7, loc="best")
    axes.set_xscale("log")
    axes.set_xlabel("latency per frame (ms, log scale; the basis of each is in RESULTS.md)")
    axes.set_ylabel("test error (cm)")
    axes.set_title("Error vs latency per target")
    axes.grid(True, which="both", alpha=0.3)
    return figure


def write_report(results, out):
    """results.json, RESULTS.md and the plots into ``out``, each made complete in a staging folder
    inside it first (the plots are binary: they are moved in by rename), results.json last."""
    work = artifacts.staging_folder(out / REPORT)
    try:
        render_plots(results, work)
        markdown = render_markdown(results)
        for name in PLOTS.values():
            os.replace(work / name, out / name)
        artifacts.write_text(out / REPORT, markdown)
        write_results(results, out / RESULTS)
    finally:
        artifacts.remove_staging(work)


def rewrite_report(out) -> Results:
    """--report_only: the report of ``out``/results.json made again; UsageError for a results.json
    that benchmarks.compare did not write complete (a record without its header, one
    benchmarks.imx500_on_pi started alone; a figure left out where its row needs it)."""
    path = out / RESULTS
    if not path.is_file():
        raise UsageError(f"--report_only: {path} does not exist; run the comparison first")
    results = read_results(path)
    missing = [name for name in ("command", "created", "machine", "data", "timing")
               if getattr(results, name) is None] + ([] if "total" in results.seconds else ["seconds.total"])
    try:
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        write_report(results, out)
    except (TypeError, ValueError, KeyError, IndexError) as error:
        raise UsageError(f"--report_only: {path} is not a complete results.json of benchmarks.compare "
                         f"({type(error).__name__}: {error}); run the comparison again") from None
    return results
