"""What every target's report.json shares, so that a caller (benchmarks.compare, zoo info, the
tests) reads any target the same way: the headline figures and how fast the model runs there,
each figure with what it rests on."""
import dataclasses
import typing

MEASURED, ESTIMATED, PUBLISHED, NO_ESTIMATE = "measured", "estimated", "published", "none"
PERFORMANCE_KINDS = (MEASURED, ESTIMATED, PUBLISHED, NO_ESTIMATE)


@dataclasses.dataclass
class Performance:
    """How fast the model runs on the target and what that rests on. ``kind``: "measured" on a
    device, "estimated" by a model (a compiler's performance estimator, a fit to published
    figures), "published" for this very model, or "none" when nothing supports a figure (then
    ``latency_ms`` and ``fps`` are None and ``basis`` says why). ``citations`` name every
    published figure used."""
    kind: str
    latency_ms: typing.Optional[float]
    fps: typing.Optional[float]
    basis: str
    citations: typing.List[str] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if self.kind not in PERFORMANCE_KINDS:
            raise ValueError(f"performance kind {self.kind!r} is not one of {PERFORMANCE_KINDS}")
        if (self.kind == NO_ESTIMATE) != (self.latency_ms is None):
            raise ValueError("a latency needs a basis, and only kind 'none' goes without one")


def no_estimate(why: str) -> Performance:
    """The performance section of a target where nothing supports a figure."""
    return Performance(NO_ESTIMATE, None, None, why)


def from_latency(kind: str, latency_ms: float, basis: str,
                 citations: typing.Sequence[str] = ()) -> Performance:
    """A performance section from one latency (fps is its inverse: one inference at a time)."""
    return Performance(kind, round(latency_ms, 4), round(1000.0 / latency_ms, 1), basis, list(citations))


def performance_line(performance: Performance) -> str:
    """The performance section as one summary line, with its basis."""
    if performance.latency_ms is None:
        return f"  latency: no estimate ({performance.basis})"
    return (f"  latency: {performance.latency_ms:.3g} ms, {performance.fps:.4g} fps ({performance.kind}: "
            f"{performance.basis})")


@dataclasses.dataclass
class Headline:
    """The figures benchmarks.compare puts side by side for every target. ``status``: the
    target's own word for the outcome (compiled, packaged, preflight-only, ...). ``fits``: None
    when it cannot be known here. ``memory``: named byte counts (e.g. sram_bytes, flash_bytes).
    ``ops_on_accelerator``: operators the accelerator runs (None when unknown); the rest run on
    the host CPU."""
    target: str
    status: str
    fits: typing.Optional[bool]
    memory: typing.Dict[str, int]
    ops_total: int
    ops_on_accelerator: typing.Optional[int]
    performance: Performance
