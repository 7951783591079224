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
class EdgeTpuReport:
    """``status`` is "compiled", "failed" or "preflight-only"; ``preflight`` is
    compilers.edgetpu.preflight's prediction, ``compiler`` the parsed compiler run (log.py)."""
    KIND: typing.ClassVar[str] = "zoo.edgetpu_report"
    SCHEMA_VERSION: typing.ClassVar[int] = 3  # 2: headline added; 3: preflight as a Preflight record
    READS_FROM: typing.ClassVar[int] = 2

    @classmethod
    def upgrade(cls, value: dict, version: int) -> dict:
        """Version 2 reads as it is: its pre-flight had Preflight's layout, now checked field by field."""
        return value
    model: str
    model_bytes: int
    out_dir: str
    preflight: Preflight
    compiler: typing.Optional[dict]
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
                                lambda report: (report.compiler or {}).get("edgetpu_model"))
