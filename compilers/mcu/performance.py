"""How fast the model runs on a board: only where a published measurement of this architecture at
this input size on that board supports a figure; otherwise no estimate, with the reason.

TFLite Micro gives no cycle model, and a board's speed on one network says little about another's
(kernels, memory placement and caches differ), so nothing is extrapolated."""
import dataclasses
import typing

from compilers.report import PUBLISHED, Performance, from_latency, no_estimate


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A published run: ``model`` (the zoo's registry name of the architecture) with inputs of
    ``input_hw`` on ``board``, at ``fps`` frames per second, end to end as the source measured it."""
    model: str
    input_hw: typing.Tuple[int, int]
    board: str
    fps: float
    what: str
    citation: str


MEASUREMENTS = (
    Measurement("tinytracker_s", (96, 96), "spresense", 3.0,
                "TinyTrackerS (85.8k parameters, 169 KB) runs the whole gaze pipeline (camera to result) on "
                "the Spresense at 3 FPS; the rate bounds inference from above",
                "Ruegg, Bonazzi, Ronco, \"Gaze Estimation on Spresense\", arXiv:2308.12313 (2023), abstract"),
)


def estimate(card, board: str) -> Performance:
    """The performance section for a model with model card ``card`` (None for any other file) on
    ``board``."""
    if card is None:
        return no_estimate("no published measurement: the file is not a zoo model, and TFLite Micro has no "
                           "performance model; measure it on the board")
    input_hw = tuple(card.inputs[0].shape[:2]) if card.inputs else ()
    for measured in MEASUREMENTS:
        if measured.model == card.model and measured.board == board:
            if input_hw != measured.input_hw:
                return no_estimate(f"the published {board} figure for {card.model} is at "
                                   f"{measured.input_hw[0]}x{measured.input_hw[1]} inputs; this build's are "
                                   f"{input_hw[0]}x{input_hw[1]}")
            return from_latency(PUBLISHED, 1000.0 / measured.fps,
                                f"{measured.what}: the same architecture at the same input size, not this "
                                "file's weights (which do not change the work)", [measured.citation])
    boards = sorted({m.board for m in MEASUREMENTS if m.model == card.model})
    return no_estimate(f"no published measurement of {card.model} on {board}"
                       + (f" (there is one on {', '.join(boards)})" if boards else ""))
