"""How fast a package runs on the IMX500: measured on the Pi (benchmarks.imx500_on_pi, which
replaces this in benchmarks.compare's results), else only what a published figure for the same
network supports. Nothing is scaled from one network to another: the IMX500's DSP has no public
performance model, and its compiler reports memory, not cycles."""
import dataclasses
import typing

from compilers.report import NO_ESTIMATE, PUBLISHED, Performance, from_latency
from zoo import tflite

MEASURE_HINT = "measure it on a Raspberry Pi AI Camera with `python -m benchmarks.imx500_on_pi`"
SONY_MOBILENET = ("Sony's 3.1 ms for ISP and AI processing with MobileNet V1 names neither its width nor its "
                  "input size, so it applies to no model here")
SONY_SOURCE = ("Sony, IMX500/IMX501 announcement, 14 May 2020, as reported by "
               "https://pokde.net/system/iot/sony-imx500-and-imx501-ai-processing and "
               "https://www.scattoselvaggio.com/wp/2020/05/19/"
               "sonys-new-intelligent-vision-sensor-is-the-worlds-first-to-feature-on-chip-ai-processing/ "
               "('within 3.1 milliseconds when using the MobileNet V1 image analysis model')")


@dataclasses.dataclass(frozen=True)
class PublishedImx500:
    """A published IMX500 latency of one network: ``architecture`` is the zoo's registered name of
    that network and ``input_hw`` its input height and width; ``detail`` what the figure covers."""
    architecture: str
    input_hw: typing.Tuple[int, int]
    latency_ms: float
    detail: str
    citation: str


PUBLISHED_FIGURES = (
    PublishedImx500(
        "tinytracker", (112, 112), 0.86,
        "the network's inference time on the sensor (+0.24 ms to read the result out; about 19 ms end to end "
        "with the camera's readout)",
        "Bonazzi et al., TinyTracker: Ultra-Fast and Ultra-Low-Power Edge Vision In-Sensor for Gaze "
        "Estimation, IEEE SENSORS 2023, arXiv 2307.07813 (abstract: 'The inference time of the network is "
        "0.86ms'); input 112x112: the default --image-size of the authors' train_TinyTracker.py "
        "(https://github.com/pbonazzi/tinytracker)"),
)


def _input_hw(graph: tflite.Graph) -> typing.Optional[typing.Tuple[int, int]]:
    """Height and width of a model's single image input (None for several inputs or no image)."""
    shapes = [graph.tensors[index].shape for index in graph.inputs]
    return tuple(shapes[0][1:3]) if len(shapes) == 1 and len(shapes[0]) == 4 else None


def estimate(architecture: typing.Optional[str], graph: tflite.Graph) -> Performance:
    """The performance section of an IMX500 report. ``architecture``: the zoo model the TFLite's
    model card names (None for a file without a card, whose network is unknown)."""
    input_hw = _input_hw(graph)
    for figure in PUBLISHED_FIGURES:
        if figure.architecture == architecture and figure.input_hw == input_hw:
            return from_latency(PUBLISHED, figure.latency_ms,
                                f"published for {architecture} at {input_hw[0]}x{input_hw[1]} on the IMX500: "
                                f"{figure.detail}; this model's card names the same network and input size; "
                                f"{MEASURE_HINT}", [figure.citation])
    named = f"{architecture} at {'x'.join(map(str, input_hw))}" if architecture and input_hw else \
        architecture or "a model without a zoo model card"
    known = "; ".join(f"{f.architecture} at {f.input_hw[0]}x{f.input_hw[1]}" for f in PUBLISHED_FIGURES)
    basis = f"no published IMX500 latency for {named} (published: {known}; {SONY_MOBILENET}); {MEASURE_HINT}"
    return Performance(NO_ESTIMATE, None, None, basis, [SONY_SOURCE])
