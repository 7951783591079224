"""results.json of benchmarks.compare as a record of zoo.artifacts' contract: what was run, where,
how it was timed, and one typed row per model x artifact x target x runtime.

Rows are of a few kinds, told apart by ``source``: measured here (a CPU runtime's latency, a
target's row with its report's headline, the mean predictor's errors, the sensor's runtimes
merged in by benchmarks.imx500_on_pi) and published (a paper's figures, with their citation).
Every field a kind lacks is None. A results.json of the first layout ({"schema": 1, ...}, no kind)
reads as this one; a damaged or foreign file is one UsageError line.
"""
import dataclasses
import json
import pathlib
import typing

from compilers.edgetpu.report import Preflight
from compilers.report import Headline, Performance
from zoo import artifacts, errors
from zoo.errors import UsageError

FIRST_LAYOUT = 1  # {"schema": 1, ...}: no kind, rows as plain objects


@dataclasses.dataclass
class CompilerFigures:
    """An Edge TPU row's figures of the compiler's run (compilers.edgetpu.report.CompilerRun);
    None where the compiler printed none."""
    version: typing.Optional[str]
    ops_total: typing.Optional[int]
    ops_on_tpu: typing.Optional[int]
    ops_on_cpu: typing.Optional[int]
    subgraphs: typing.Optional[int]
    on_chip_bytes: typing.Optional[int]
    off_chip_bytes: typing.Optional[int]
    compile_ms: typing.Optional[int]
    error: typing.Optional[str]


@dataclasses.dataclass
class ResultRow:
    """One result row. Its key (source, model, artifact, target, runtime, threads; None where it
    does not apply, as for a published row without a target) is always written; the rest default
    to None where the row's kind lacks them: the latency fields where nothing was timed, the cm
    errors where nothing was evaluated, ``headline`` and ``performance`` outside the targets' rows,
    ``preflight``, ``compiler`` and ``edgetpu_status`` outside the Edge TPU's, ``memory`` outside
    the IMX500's, the DSP and camera figures outside the sensor's own, ``citation`` outside the
    published rows."""
    source: str
    model: str
    artifact: typing.Optional[str]
    target: typing.Optional[str]
    runtime: typing.Optional[str]
    threads: typing.Optional[int]
    status: typing.Optional[str] = None
    latency_ms_median: typing.Optional[float] = None
    latency_ms_p90: typing.Optional[float] = None
    fps: typing.Optional[float] = None
    runs: typing.Optional[int] = None
    warmup: typing.Optional[int] = None
    reference_model: typing.Optional[str] = None
    reference_ms_median: typing.Optional[float] = None
    vs_reference: typing.Optional[float] = None
    cm: typing.Optional[float] = None
    cm_phone: typing.Optional[float] = None
    cm_tablet: typing.Optional[float] = None
    frames: typing.Optional[int] = None
    data: typing.Optional[str] = None
    bytes: typing.Optional[int] = None
    params: typing.Optional[int] = None
    macs: typing.Optional[int] = None
    file: typing.Optional[str] = None
    note: typing.Optional[str] = None
    citation: typing.Optional[str] = None
    headline: typing.Optional[Headline] = None
    performance: typing.Optional[Performance] = None
    edgetpu_status: typing.Optional[str] = None
    preflight: typing.Optional[Preflight] = None
    compiler: typing.Optional[CompilerFigures] = None
    memory: typing.Optional[typing.Dict[str, typing.Any]] = None
    dsp_ms_median: typing.Optional[float] = None
    dsp_ms_p90: typing.Optional[float] = None
    camera_fps: typing.Optional[float] = None

    def key(self) -> tuple:
        return (self.source, self.model, self.artifact, self.target, self.runtime, self.threads)


@dataclasses.dataclass
class Machine:
    """The machine the comparison ran on, with its load at the start and the end."""
    cpu: str
    cores: typing.Optional[int]
    machine: str
    system: str
    load_average: typing.List[float]
    load_average_end: typing.Optional[typing.List[float]] = None


@dataclasses.dataclass
class TimingRecord:
    """How every latency was timed (benchmarks.latency.Timing and the runtimes and reference)."""
    threads: int
    warmup: int
    num_runs: int
    max_seconds: float
    runtimes: typing.List[str]
    reference: typing.Optional[str]


@dataclasses.dataclass
class Results:
    """results.json. The header (command, created, machine, data, timing) is None only in a file
    benchmarks.imx500_on_pi started on its own, which holds its rows and nothing to render."""
    KIND: typing.ClassVar[str] = "benchmarks.results"
    # 1: the first layout, "schema": 1 and no kind; 3: a row's compiler as CompilerFigures
    SCHEMA_VERSION: typing.ClassVar[int] = 3
    READS_FROM: typing.ClassVar[int] = 1

    @classmethod
    def upgrade(cls, value: dict, version: int) -> dict:
        """The first layout reads as it is, less its "schema" number; version 2 as it is (its rows'
        compiler figures had CompilerFigures' layout, now checked field by field)."""
        return {key: field for key, field in value.items() if key != "schema"}
    command: typing.Optional[str] = None
    created: typing.Optional[str] = None
    machine: typing.Optional[Machine] = None
    data: typing.Optional[typing.Dict[str, str]] = None
    timing: typing.Optional[TimingRecord] = None
    seconds: typing.Dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    rows: typing.List[ResultRow] = dataclasses.field(default_factory=list)


ROW_FIELDS = tuple(field.name for field in dataclasses.fields(ResultRow))


def row_record(fields: dict) -> ResultRow:
    """The record of a row an app made as a dict (benchmarks.result_row); a field the record does
    not have is a bug of the app, not of a file, so it raises ValueError."""
    unknown = set(fields) - set(ROW_FIELDS)
    if unknown:
        raise ValueError(f"result row fields {sorted(unknown)} are not fields of ResultRow")
    return artifacts.record_from(ResultRow, fields, "a result row")


def row_fields(row: ResultRow) -> dict:
    """The row as the tables and --json print it."""
    return dataclasses.asdict(row)


def merge_rows(results: Results, rows: typing.Sequence[ResultRow]) -> Results:
    """``results`` with ``rows`` merged in: a row updates the earlier row of the same key with the
    fields it knows (not None), keeping the others (e.g. the IMX500 memory figures), or is added."""
    merged = {row.key(): row for row in results.rows}
    for row in rows:
        known = {field: getattr(row, field) for field in ROW_FIELDS if getattr(row, field) is not None}
        merged[row.key()] = dataclasses.replace(merged[row.key()], **known) if row.key() in merged else row
    return dataclasses.replace(results, rows=list(merged.values()))


def read_results(path: "str | pathlib.Path") -> Results:
    """The results.json at ``path``; an empty one when it does not exist yet. UsageError, one line,
    for a file this project did not write as one (not JSON, another kind, rows without their key)."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give the results.json file")
    if not path.exists():
        return Results()
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise UsageError(f"{path}: not a readable results.json ({errors.one_line(error)[:120]})") from None
    if isinstance(value, dict) and "kind" not in value and value.get("schema") == FIRST_LAYOUT:
        value = {**value, "kind": Results.KIND, "schema_version": FIRST_LAYOUT}
    return artifacts.from_json(Results, value, path)


def write_results(results: Results, path: "str | pathlib.Path") -> None:
    """``results`` as JSON in ``path``, through a temporary file (a reader never sees half of it)."""
    artifacts.write_text(path, json.dumps(artifacts.to_json(results), indent=1) + "\n")
