"""report.json of the microcontroller target: the arena TFLite Micro measured, the flash the model
takes, the operators and their registration, the fit on every board of the table, and how TFLite
Micro's outputs agree with LiteRT's."""
import dataclasses
import pathlib
import typing

from compilers import common
from compilers.mcu.agreement import Agreement
from compilers.mcu.boards import BoardFit
from compilers.mcu.ops import OperatorUse
from compilers.mcu.tflm import ArenaRecord
from compilers.report import Headline
from zoo import artifacts


@dataclasses.dataclass
class McuReport:
    """``flash_bytes`` is the model file (the C array's length): nothing is added for code the
    application links. ``resolver`` is the C++ type model_ops.h declares (N = distinct operators);
    ``board`` the board of the headline (``boards`` has them all)."""
    KIND: typing.ClassVar[str] = "zoo.mcu_report"
    SCHEMA_VERSION: typing.ClassVar[int] = 1
    model: str
    out_dir: str
    flash_bytes: int
    operators: typing.List[OperatorUse]
    operator_count: int
    resolver: str
    arena: ArenaRecord
    board: str
    boards: typing.List[BoardFit]
    agreement: Agreement
    files: typing.Dict[str, artifacts.FileRecord]
    toolchain: typing.Dict[str, str]
    seconds: typing.Dict[str, float]
    status: str
    headline: Headline


Report = McuReport


def read_report(folder: "str | pathlib.Path") -> McuReport:
    """The report compile() left in ``folder``; one UsageError line when it is missing or damaged."""
    return common.read_report(McuReport, folder)
