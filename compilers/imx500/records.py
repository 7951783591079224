"""The sections of the IMX500 report.json (compilers.imx500.report) as records: where the model and
its calibration data came from, the package's tensors as imxconv-tf states them, the MCT model's
agreement with the float model, the host tail and what the Raspberry Pi side needs. A field that
a report of schema version 4 or earlier may lack has a default (None), so those still read."""
import dataclasses
import typing


@dataclasses.dataclass
class SourceRecord:
    """The TFLite compiled, the Keras model given with --keras (None: imported from the TFLite),
    whether the file carried a zoo model card, and the calibration data (``data_root``: the
    GazeCapture root whose test split evaluated the model, None for other data)."""
    tflite: str
    keras: typing.Optional[str]
    model_card: bool
    data: str
    data_kind: str
    data_root: typing.Optional[str]


@dataclasses.dataclass
class CalibrationInput:
    """One model input as MCT calibrated it: its recipe (None for photos and arrays) and shape."""
    name: str
    recipe: typing.Optional[str]
    shape: typing.List[int]


@dataclasses.dataclass
class CalibrationRecord:
    """``frames`` calibrated on; ``epochs`` of GPTQ/QAT (None for PTQ)."""
    frames: int
    epochs: typing.Optional[int]
    inputs: typing.List[CalibrationInput]


@dataclasses.dataclass
class PackageTensor:
    """An input or output of the package as dnnParams.xml states it (shape in ordinal order)."""
    name: str
    shape: typing.List[int]
    bits: int
    format: typing.Optional[str]
    scale: float
    shift: int


@dataclasses.dataclass
class Difference:
    """Mean and largest |MCT output - float output| over the check inputs' values."""
    mean_abs_diff: float
    max_abs_diff: float


@dataclasses.dataclass
class AgreementRecord:
    """The MCT model(s) against the float model on ``frames`` check inputs, per output bits and for
    the package's (the highest bits); ``top1_agreement``: for one output of scores, the share of
    positions where both pick the same top entry (None for other outputs)."""
    frames: int
    by_output_bits: typing.Dict[str, Difference]
    mean_abs_diff: float
    max_abs_diff: float
    top1_agreement: typing.Optional[float] = None


@dataclasses.dataclass
class FaceGridRecord:
    """The face grid baked into the package: its cells, where they came from, the sensor ROI
    they make, and how far the package's prediction is from the quantized model's fed it."""
    cells: typing.List[int]
    source: str
    sensor_roi: typing.List[int]
    check_max_abs_diff_cm: float


@dataclasses.dataclass
class TailTensor:
    """An input or output tensor of host_tail.tflite (scale and zero point None when float)."""
    index: int
    name: str
    shape: typing.List[int]
    dtype: str
    scale: typing.Optional[float]
    zero_point: typing.Optional[int]


@dataclasses.dataclass
class HostTailRecord:
    """host_tail.tflite: the operators the Pi runs ("INDEX NAME"), why the first ones cannot run on
    the sensor, its custom operators, its tensors and the bit-for-bit check against the file."""
    file: str
    operators: typing.List[str]
    starts_at: typing.Dict[str, str]
    custom_operators: typing.List[str]
    inputs: typing.List[TailTensor]
    outputs: typing.List[TailTensor]
    check: str


@dataclasses.dataclass
class AspectRatio:
    width: int
    height: int


@dataclasses.dataclass
class ClassLabels:
    labels: typing.List[str]


@dataclasses.dataclass
class NetworkIntrinsics:
    """picamera2's network intrinsics (network_intrinsics.json): the input's aspect ratio, and
    where known the task, the inference rate and a classifier's labels."""
    input_aspect_ratio: AspectRatio
    task: typing.Optional[str] = None
    inference_rate: typing.Optional[float] = None
    classes: typing.Optional[ClassLabels] = None

    def for_picamera2(self) -> dict:
        """The JSON picamera2 reads: the fields it has, none given as null."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


@dataclasses.dataclass
class RaspberryPiRecord:
    """The steps on the Raspberry Pi: what to install, how to package, what that writes, how to run."""
    install: str
    package: str
    writes: str
    run: str


@dataclasses.dataclass
class DeploymentRecord:
    """What the Pi side needs: the inputs the sensor feeds, the baked face grid, the inference ROI,
    the output's meaning (``gaze_scale_cm``, ``task``, ``labels``), the host tail, picamera2's
    intrinsics; ``in_network_conversion``: a colour conversion inside the network; ``note``: why
    the sensor cannot feed every input (None when it can)."""
    sensor_inputs: typing.List[str]
    face_grid: typing.Optional[FaceGridRecord]
    roi: typing.List[int]
    gaze_scale_cm: typing.Optional[float]
    task: typing.Optional[str]
    labels: typing.Optional[typing.List[str]]
    host_tail: typing.Optional[HostTailRecord]
    network_intrinsics: NetworkIntrinsics
    output: str
    sensor_feeds_all_inputs: bool
    raspberry_pi: RaspberryPiRecord
    in_network_conversion: typing.Optional[str] = None
    note: typing.Optional[str] = None
