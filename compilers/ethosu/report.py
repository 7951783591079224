"""report.json of the Ethos-U target: Vela's own figures (its summary CSV and per-layer CSV, read
by compilers/ethosu/vela_output.py), where every operator of the model runs and why, and the
configuration they hold for."""
import dataclasses
import pathlib
import typing

from compilers.ethosu.config import Configuration
from compilers.report import Headline
from compilers import common


@dataclasses.dataclass
class Summary:
    """Vela's summary CSV (NAME_summary_SYSTEM.csv), in bytes and seconds where Vela writes KiB.
    ``memory_used_bytes`` and ``cycles`` keep Vela's names (sram, dram, on_chip_flash,
    off_chip_flash; npu, sram_access, ..., total). ``inferences_per_second`` is None when Vela
    writes NaN (nothing on the NPU)."""
    network: str
    accelerator: str
    system_config: str
    memory_mode: str
    core_clock_hz: float
    arena_cache_size_bytes: int
    weights_storage_area: str
    feature_map_storage_area: str
    inference_time_s: float
    inferences_per_second: typing.Optional[float]
    memory_used_bytes: typing.Dict[str, int]
    cycles: typing.Dict[str, int]
    original_weights_bytes: int
    npu_encoded_weights_bytes: int
    macs: int
    passes_before_fusing: int
    passes_after_fusing: int


@dataclasses.dataclass
class Layer:
    """One row of Vela's per-layer CSV (NAME_per-layer.csv, written with --verbose-performance):
    an operator as Vela scheduled it (``operator``) and the model's operator it came from
    (``original_operator``, "N/A" for one Vela added); percentages are Vela's, None for its NaN.
    ``repeat``: how many identical rows Vela writes here in a row (it splits some operators into
    thousands of equal parts; each part's figures are the row's)."""
    original_operator: str
    operator: str
    target: str
    staging_usage_bytes: int
    staging_peak_percent: typing.Optional[float]
    op_cycles: int
    network_cycles_percent: typing.Optional[float]
    npu_cycles: int
    sram_access_cycles: int
    dram_access_cycles: int
    on_chip_flash_access_cycles: int
    off_chip_flash_access_cycles: int
    macs: int
    network_macs_percent: typing.Optional[float]
    mac_utilization_percent: typing.Optional[float]
    name: str
    repeat: int


@dataclasses.dataclass
class CpuOperator:
    """An operator of the model that Vela leaves to the CPU. ``index``: its place in the model
    (None when Vela's name for it matches no operator output); ``reason``: Vela's own words."""
    index: typing.Optional[int]
    op: str
    output: str
    reason: str


@dataclasses.dataclass
class EthosUReport:
    """``ops_total`` counts the model's operators; ``ops_on_npu`` those inside the NPU command
    streams Vela wrote (``npu_subgraphs`` ethos-u operators in the compiled file), the rest run
    on the CPU (``cpu_operators``, with Vela's reasons). ``command`` is the Vela command line that
    made ``files``; ``seconds`` its wall time."""
    KIND: typing.ClassVar[str] = "zoo.ethosu_report"
    SCHEMA_VERSION: typing.ClassVar[int] = 1
    model: str
    model_bytes: int
    out_dir: str
    vela_version: str
    configuration: Configuration
    command: typing.List[str]
    ops_total: int
    ops_on_npu: int
    npu_subgraphs: int
    npu_operators: typing.Dict[str, int]
    cpu_operators: typing.List[CpuOperator]
    summary: Summary
    layers: typing.List[Layer]
    warnings: typing.List[str]
    files: typing.Dict[str, str]
    seconds: float
    headline: Headline


Report = EthosUReport


def read_report(folder: "str | pathlib.Path") -> EthosUReport:
    """The report compile() left in ``folder``; one UsageError line when it is missing or damaged."""
    return common.read_report(EthosUReport, folder)


def compiled_model(folder: "str | pathlib.Path") -> typing.Optional[pathlib.Path]:
    """The Vela-optimized NAME_vela.tflite that compile() left in ``folder``, or None."""
    return common.compiled_file(folder, read_report, lambda report: report.files.get("vela_model"))
