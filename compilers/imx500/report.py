"""report.json of the IMX500 target: the package's memory on the chip, the import check, how well
the MCT-quantized model does, and what the Raspberry Pi side needs."""
import dataclasses
import pathlib
import typing

from compilers.report import Headline
from compilers import common
from zoo import artifacts


@dataclasses.dataclass
class MemoryRecord:
    usage_bytes: int
    available_bytes: int
    utilization: float
    fit_in_chip: bool
    runtime_bytes: int
    model_bytes: int
    reserved_bytes: int
    input_persistent: typing.Optional[typing.Any]


@dataclasses.dataclass
class Imx500Report:
    """report.json of the IMX500 target. ``metrics``: the MCT model's gaze errors (with "float"
    and "tflite" beside them) when the data has labels, else None; ``agreement``: the MCT model's
    outputs against the float model's on the import check's inputs; ``import_check``: the
    TFLite-to-Keras importer against the TFLite itself."""
    KIND: typing.ClassVar[str] = "zoo.imx500_report"
    SCHEMA_VERSION: typing.ClassVar[int] = 2  # 2: headline added
    model: str
    source: dict
    method: str
    calibration: dict
    import_check: dict
    memory: MemoryRecord
    inputs: typing.List[dict]
    outputs: typing.List[dict]
    metrics: typing.Optional[dict]
    agreement: dict
    deployment: dict
    files: typing.Dict[str, artifacts.FileRecord]
    toolchain: dict
    seconds: typing.Dict[str, float]
    headline: Headline


Report = Imx500Report


def read_report(folder: "str | pathlib.Path") -> Imx500Report:
    """The report compile() left in ``folder``; one UsageError line when it is missing or damaged."""
    return common.read_report(Imx500Report, folder)
