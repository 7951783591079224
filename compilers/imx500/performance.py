"""How fast a package runs on the IMX500: measured on the Pi (benchmarks.imx500_on_pi), else only
what published figures support."""
from compilers.report import Performance, no_estimate


def estimate(model: str) -> Performance:
    """The performance section of an IMX500 report for the package of ``model``."""
    return no_estimate("measured only on a Raspberry Pi AI Camera (python -m benchmarks.imx500_on_pi)")
