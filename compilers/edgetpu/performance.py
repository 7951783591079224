"""How fast a model runs on the Edge TPU: measured when a device is attached (benchmarks.latency
--device), else no figure until an estimate with a stated basis exists."""
from compilers.report import Performance, no_estimate


def estimate(preflight: dict) -> Performance:
    """The performance section of an Edge TPU report for the pre-flight ``preflight``."""
    return no_estimate("no Edge TPU attached here; measure with "
                       "`python -m benchmarks.latency BUILD --device usb`")
