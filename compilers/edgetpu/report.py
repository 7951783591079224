"""report.json of the Edge TPU target: the pre-flight always, the compiler's figures when it ran."""
import dataclasses
import pathlib
import typing

from compilers.report import Headline
from compilers import common


@dataclasses.dataclass
class OperatorPlacement:
    """One operator, in execution order, where the pre-flight puts it: its status in the compiler's
    words, and the rule (with its basis) that keeps it off the TPU; both None on the TPU."""
    index: int
    op: str
    version: int
    on_tpu: bool
    status: str
    rule: typing.Optional[str]
    basis: typing.Optional[str]


@dataclasses.dataclass
class CpuOperators:
    """``count`` operators of kind ``op`` that the pre-flight leaves on the CPU for one reason."""
    op: str
    count: int
    status: str
    rule: typing.Optional[str]
    basis: typing.Optional[str]


@dataclasses.dataclass
class PartitionPoint:
    """The first operator after the TPU part that runs on the CPU: where that part ends."""
    index: int
    op: str
    status: str
    rule: typing.Optional[str]
    basis: typing.Optional[str]


@dataclasses.dataclass
class RuleRecord:
    """A rule of compilers/edgetpu/rules.py that fired: what must hold, the compiler's status words
    when it does not, the kind of basis and its source."""
    constraint: str
    status: str
    basis: str
    source: str


@dataclasses.dataclass
class Preflight:
    """compilers.edgetpu.preflight's prediction: operator counts, the CPU operators with their
    status and basis, where the TPU part ends (None: it does not), the rules that fired by id, the
    parameter bytes the TPU part caches within the on-chip budget or streams, the model-level
    problems (the compiler refuses the model) and warnings, and every operator's placement."""
    ops_total: int
    ops_on_tpu: int
    ops_on_cpu: int
    subgraphs: int
    cpu_ops: typing.List[CpuOperators]
    partition_at: typing.Optional[PartitionPoint]
    rules: typing.Dict[str, RuleRecord]
    param_bytes: int
    on_chip_budget_bytes: int
    param_bytes_on_chip: int
    param_bytes_streamed: int
    problems: typing.List[str]
    warnings: typing.List[str]
    operators: typing.List[OperatorPlacement]


@dataclasses.dataclass
class OperationRow:
    """A row of the compiler's operation table: ``count`` operators ``op`` with the same status."""
    op: str
    count: int
    status: str


@dataclasses.dataclass
class OperatorCount:
    op: str
    count: int


@dataclasses.dataclass
class CompiledModel:
    """What the compiled file holds: its edgetpu-custom-op subgraphs and the operators beside them."""
    tpu_subgraphs: int
    cpu_ops: typing.List[OperatorCount]


@dataclasses.dataclass
class CompilerRun:
    """One run of edgetpu_compiler (compilers/edgetpu/run.py, parsed by log.py): the command, its
    exit status (None: timed out) and output, the version and the figures it printed (None where
    it printed none, all of them after a timeout), the operation table of its log (``operations``,
    ``cpu_ops``: the rows not mapped), the compiled file's operators; ``error`` is None only when
    the compiled model ``edgetpu_model`` was written."""
    path: str
    command: typing.List[str]
    returncode: typing.Optional[int]
    output: typing.Optional[str]
    version: typing.Optional[str]
    error: typing.Optional[str]
    edgetpu_model: typing.Optional[str]
    log: typing.Optional[str]
    compile_ms: typing.Optional[int] = None
    input_model: typing.Optional[str] = None
    input_bytes: typing.Optional[int] = None
    output_model: typing.Optional[str] = None
    output_bytes: typing.Optional[int] = None
    on_chip_bytes: typing.Optional[int] = None
    on_chip_remaining_bytes: typing.Optional[int] = None
    off_chip_bytes: typing.Optional[int] = None
    subgraphs: typing.Optional[int] = None
    ops_total: typing.Optional[int] = None
    operation_log: typing.Optional[str] = None
    ops_on_tpu: typing.Optional[int] = None
    ops_on_cpu: typing.Optional[int] = None
    operations: typing.Optional[typing.List[OperationRow]] = None
    cpu_ops: typing.Optional[typing.List[OperationRow]] = None
    compiled_model: typing.Optional[CompiledModel] = None


@dataclasses.dataclass
class EdgeTpuReport:
    """``status`` is "compiled", "failed" or "preflight-only"; ``preflight`` is
    compilers.edgetpu.preflight's prediction, ``compiler`` the parsed compiler run (log.py)."""
    KIND: typing.ClassVar[str] = "zoo.edgetpu_report"
    # 2: headline added; 3: preflight as a Preflight record; 4: compiler as a CompilerRun record
    SCHEMA_VERSION: typing.ClassVar[int] = 4
    # Versions 2 and 3 read as they are: their pre-flight and compiler sections had Preflight's
    # and CompilerRun's layout, now checked field by field.
    READS_FROM: typing.ClassVar[int] = 2
    model: str
    model_bytes: int
    out_dir: str
    preflight: Preflight
    compiler: typing.Optional[CompilerRun]
    disagreements: typing.List[str]
    status: str
    status_detail: str
    headline: Headline


Report = EdgeTpuReport


def read_report(folder: "str | pathlib.Path") -> EdgeTpuReport:
    """The report compile() left in ``folder``; one UsageError line when it is missing or damaged."""
    return common.read_report(EdgeTpuReport, folder)


def compiled_model(folder: "str | pathlib.Path") -> typing.Optional[pathlib.Path]:
    """The NAME_edgetpu.tflite that compile() left in ``folder`` (as its report.json says), or None."""
    return common.compiled_file(folder, read_report,
                                lambda report: report.compiler and report.compiler.edgetpu_model)
