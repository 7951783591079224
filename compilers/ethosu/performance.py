"""How fast a model runs on the Ethos-U: Vela's own estimate for the configuration compiled for.
Vela's documentation says what the estimate is worth (cited in every report); a run on an FVP
model or an FPGA measures it."""
import typing

from compilers.ethosu.config import Configuration
from compilers.ethosu.report import Summary
from compilers.report import ESTIMATED, Performance, from_latency, no_estimate

_DOCS = "https://gitlab.arm.com/artificial-intelligence/ethos-u/ethos-u-vela/-/blob/{version}/"


def citations(version: str) -> typing.List[str]:
    """Vela's own statements of what its performance figures are."""
    base = _DOCS.format(version=version)
    return [f"{base}README.md#performance-information (Vela {version}: the cycle and bandwidth numbers "
            "are the compiler's estimates, not real performance; run on an FVP model or FPGA for that)",
            f"{base}PERFORMANCE.md (how Vela estimates)"]


def estimate(summary: Summary, configuration: Configuration, version: str, cpu_ops: int) -> Performance:
    """The performance section of an Ethos-U report from Vela's summary. The operators left to
    the CPU are outside Vela's estimate: the basis says how many."""
    if summary.cycles["total"] == 0:
        return no_estimate(f"Vela {version} places no operator on the NPU; the CPU's time is not estimated")
    basis = (f"Vela {version} estimate: {summary.cycles['total']:,} cycles at "
             f"{summary.core_clock_hz / 1e6:g} MHz on {configuration.accelerator}, system config "
             f"{configuration.system_config}, memory mode {configuration.memory_mode}")
    if cpu_ops:
        basis += f"; the {cpu_ops} operator(s) on the CPU are not counted"
    return from_latency(ESTIMATED, summary.inference_time_s * 1000.0, basis, citations(version))
