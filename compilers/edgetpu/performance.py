"""How fast a model runs on the Edge TPU. Measured when a device is attached
(`python -m benchmarks.latency BUILD --device=usb`, which replaces this in benchmarks.compare's
results); otherwise estimated by a small model fitted to Coral's published latencies
(compilers/edgetpu/published.py), whose leave-one-out error on those figures goes into every basis.

The model is what the hardware suggests and no more: a fixed cost per inference (the invoke and
the USB round trip), a cost per multiply-accumulate on the TPU, and a cost per element the
operators left on the CPU write (resize, argmax, ... run there at memory speed):

    latency_ms = t0 + a * GMACs on the TPU + b * million elements written on the CPU

fitted by least squares on the relative error (the figures span 0.9 to 37 ms). It says nothing
about parameters streamed from host memory (no published model it rests on streams any), so
then there is no estimate."""
import dataclasses
import functools
import typing

import numpy as np

from compilers import costs
from compilers.edgetpu import published
from compilers.edgetpu.report import Preflight
from compilers.report import ESTIMATED, Performance, from_latency, no_estimate
from zoo import tflite

MEASURE_HINT = "measure it with `python -m benchmarks.latency BUILD --device=usb`"


@dataclasses.dataclass(frozen=True)
class Features:
    """What the estimate reads off a model: see the module docstring."""
    tpu_macs: int
    cpu_elements: int

    def row(self) -> typing.List[float]:
        """The regression row: intercept, GMACs, million elements."""
        return [1.0, self.tpu_macs / 1e9, self.cpu_elements / 1e6]


def features(graph: tflite.Graph, preflight: Preflight) -> Features:
    """The features of ``graph`` with the pre-flight's placement of its operators."""
    on_tpu = {row.index: row.on_tpu for row in preflight.operators}
    tpu = [op for op in graph.operators if on_tpu[op.index]]
    cpu = [op for op in graph.operators if not on_tpu[op.index]]
    return Features(costs.graph_macs(graph, tpu), costs.output_elements(graph, cpu))


def fit(rows: typing.Sequence[published.PublishedLatency]) -> np.ndarray:
    """(t0 ms, ms per GMAC, ms per million CPU elements) minimising the squared relative error."""
    design = np.array([Features(r.tpu_macs, r.cpu_elements).row() for r in rows])
    latency = np.array([r.latency_ms for r in rows])
    coefficients, *_ = np.linalg.lstsq(design / latency[:, None], np.ones(len(rows)), rcond=None)
    return coefficients


def predict(coefficients: np.ndarray, point: Features) -> float:
    return float(np.dot(coefficients, point.row()))


def leave_one_out(rows: typing.Sequence[published.PublishedLatency]) -> typing.List[float]:
    """Relative error (predicted / published - 1) of each row predicted by a fit to the others."""
    errors = []
    for index, held_out in enumerate(rows):
        coefficients = fit([row for other, row in enumerate(rows) if other != index])
        errors.append(predict(coefficients, Features(held_out.tpu_macs, held_out.cpu_elements))
                      / held_out.latency_ms - 1)
    return errors


@dataclasses.dataclass(frozen=True)
class Fit:
    coefficients: np.ndarray
    loo_errors: typing.Tuple[float, ...]
    rows: typing.Tuple[published.PublishedLatency, ...]

    @property
    def loo_summary(self) -> str:
        errors = np.abs(self.loo_errors)
        return (f"leave-one-out error on those {len(self.rows)} figures: median {np.median(errors):.0%}, "
                f"largest {errors.max():.0%}")

    @property
    def macs_range(self) -> typing.Tuple[int, int]:
        return min(r.tpu_macs for r in self.rows), max(r.tpu_macs for r in self.rows)


@functools.lru_cache(maxsize=None)
def published_fit() -> Fit:
    """The fit to every published figure, with its leave-one-out errors (computed once)."""
    rows = published.PUBLISHED
    return Fit(fit(rows), tuple(leave_one_out(rows)), rows)


def _no_estimate_reason(preflight: Preflight) -> typing.Optional[str]:
    if preflight.problems:
        return f"the pre-flight predicts edgetpu_compiler refuses this model ({preflight.problems[0]})"
    if not preflight.ops_on_tpu:
        return "the pre-flight predicts no operator on the Edge TPU"
    if preflight.param_bytes_streamed:
        return (f"{preflight.param_bytes_streamed:,} parameter bytes stream from host memory every "
                f"inference, and none of the published models the estimate is fitted to streams any")
    return None


def estimate(graph: tflite.Graph, preflight: Preflight) -> Performance:
    """The performance section of an Edge TPU report for ``graph`` and its pre-flight."""
    why_not = _no_estimate_reason(preflight)
    if why_not:
        return no_estimate(f"{why_not}; {MEASURE_HINT}")
    model, point = published_fit(), features(graph, preflight)
    t0, per_gmac, per_million = model.coefficients
    low, high = model.macs_range
    outside = "" if low <= point.tpu_macs <= high else \
        f"; {point.tpu_macs / 1e6:.2f} M MACs is outside the fitted {low / 1e6:.1f}-{high / 1e6:.0f} M"
    basis = (f"fitted to {len(model.rows)} published Coral latencies (USB Accelerator on a desktop CPU; "
             f"compilers/edgetpu/published.py): {t0:.3g} ms + {per_gmac:.3g} ms per GMAC on the TPU "
             f"({point.tpu_macs / 1e6:.2f} M here) + {per_million:.3g} ms per million elements CPU operators "
             f"write ({point.cpu_elements:,} here); {model.loo_summary}{outside}; {MEASURE_HINT}")
    citations = sorted({row.latency_source for row in model.rows}
                       | {row.costs_source for row in model.rows if row.costs_source != published.COMPUTED})
    return from_latency(ESTIMATED, predict(model.coefficients, point), basis, citations)


def describe_fit() -> str:
    """The fit and each published figure's leave-one-out prediction, as BUILD_NOTES shows them."""
    model = published_fit()
    lines = [f"coefficients: t0 {model.coefficients[0]:.4f} ms, {model.coefficients[1]:.4f} ms per GMAC, "
             f"{model.coefficients[2]:.4f} ms per million CPU elements; {model.loo_summary}",
             "| model | input | published ms | TPU MACs | CPU elements | left-out prediction ms | error |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row, error in zip(model.rows, model.loo_errors):
        predicted = row.latency_ms * (1 + error)
        lines.append(f"| {row.model} | {'x'.join(map(str, row.input_size))} | {row.latency_ms} | "
                     f"{row.tpu_macs / 1e6:.1f} M | {row.cpu_elements:,} | {predicted:.2f} | {error:+.0%} |")
    return "\n".join(lines)
