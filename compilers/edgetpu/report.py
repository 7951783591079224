"""report.json of the Edge TPU target: the pre-flight always, the compiler's figures when it ran."""
import dataclasses
import pathlib
import typing

from compilers.report import Headline
from compilers import common


@dataclasses.dataclass
class EdgeTpuReport:
    """``status`` is "compiled", "failed" or "preflight-only"; ``preflight`` is
    compilers.edgetpu.preflight's prediction, ``compiler`` the parsed compiler run (log.py)."""
    KIND: typing.ClassVar[str] = "zoo.edgetpu_report"
    SCHEMA_VERSION: typing.ClassVar[int] = 2  # 2: headline added
    model: str
    model_bytes: int
    out_dir: str
    preflight: dict
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
