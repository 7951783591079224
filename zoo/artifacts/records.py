"""The records of the artifact contract (zoo.artifacts exports them): the model card, the build's
manifest with its gaze errors and training, the output marker. Each top-level record has a KIND and
a SCHEMA_VERSION, moved whenever one of its fields (or a nested record's) changes; READS_FROM, the
oldest version it still reads; and an ``upgrade`` where an older version's layout differs."""
import dataclasses
import typing


@dataclasses.dataclass
class FileRecord:
    path: str
    bytes: int
    sha256: str


@dataclasses.dataclass
class InputRecord:
    """One model input: how it is made from a frame (recipe), its value range and layout."""
    name: str
    shape: typing.List[int]
    recipe: str
    value_range: typing.List[float]
    layout: str  # "HWC" for images, "flat" for the face-grid mask
    dtype: str
    scale: typing.Optional[float]
    zero_point: typing.Optional[int]


@dataclasses.dataclass
class OutputRecord:
    name: str
    shape: typing.List[int]
    scale_cm: float
    meaning: str


@dataclasses.dataclass
class DataRecord:
    """The data a model was trained on: where, which (fingerprint of the valid frames), how many."""
    root: str
    fingerprint: str
    rendered: typing.Optional[dict]
    valid_frames: typing.Dict[str, int]


@dataclasses.dataclass
class BoxMapRecord:
    """How `zoo predict` frames one face detector's output like the training data's boxes
    (zoo.inference.boxmap): ``face`` (dx, dy, sw, sh), ``left_eye`` and ``right_eye`` (ex, ey, es), fitted
    on ``fitted_frames`` train frames of the card's data; on ``held_out_frames`` test frames
    (``found``: the share of the sampled test frames where the detector found the face), the
    mean IoU with the dataset's face and eye boxes before and after the map."""
    detector: str
    face: typing.List[float]
    left_eye: typing.List[float]
    right_eye: typing.List[float]
    fitted_frames: int
    held_out_frames: int
    found: float
    face_iou_before: float
    face_iou_after: float
    eye_iou_before: float
    eye_iou_after: float


@dataclasses.dataclass
class ModelCard:
    """What a TFLite file of the zoo says about itself (its metadata entry): enough to make its
    inputs from a frame and read its output as gaze, with no file beside it. ``box_maps``: per
    face detector (zoo.inference.faces.DETECTORS), the map of its boxes to the data's; None on a card
    made before the maps."""
    KIND: typing.ClassVar[str] = "zoo.model_card"
    SCHEMA_VERSION: typing.ClassVar[int] = 2  # 2: box_maps
    READS_FROM: typing.ClassVar[int] = 1  # as it is: a version-1 card has no box_maps (None)
    model: str
    builder_args: dict
    mode: str
    seed: int
    inputs: typing.List[InputRecord]
    output: OutputRecord
    data: DataRecord
    box_maps: typing.Optional[typing.Dict[str, BoxMapRecord]] = None


@dataclasses.dataclass
class TrainingRecord:
    """How the build trained. ``batch_size`` is per replica; ``global_batch_size`` is it times
    ``replicas`` (all workers'), the batch of each optimizer step, of which ``steps_per_epoch``
    make an epoch. ``strategy``: zoo.train.distribute's name of the tf.distribute strategy. The last
    three have defaults (one replica) so that records made in code before them still build."""
    epochs: int
    qat_epochs: int
    batch_size: int
    steps_per_epoch_cap: typing.Optional[int]
    steps_per_epoch: int
    learning_rate: float
    qat_learning_rate: float
    lr_schedule: str
    loss: str
    best_val_loss: typing.Dict[str, float]
    strategy: str = "default"
    replicas: int = 1
    global_batch_size: typing.Optional[int] = None  # None: batch_size x replicas

    def __post_init__(self):
        if self.global_batch_size is None:
            self.global_batch_size = self.batch_size * self.replicas


@dataclasses.dataclass
class GazeErrors:
    """GazeCapture's metric on one set of frames (zoo.inference.metrics.gaze_errors): the mean
    distance in cm between predicted and true gaze point over all ``frames``, and over the phone
    and the tablet frames alone; None where there are no such frames."""
    cm: typing.Optional[float]
    cm_phone: typing.Optional[float]
    cm_tablet: typing.Optional[float]
    frames: int


@dataclasses.dataclass
class BuildManifest:
    """manifest.json of a `zoo build` folder. ``metrics`` maps an artifact kind (and
    zoo.inference.metrics.MEAN_BASELINE) to its gaze errors on the test split."""
    KIND: typing.ClassVar[str] = "zoo.build"
    SCHEMA_VERSION: typing.ClassVar[int] = 3  # 2: the card's box_maps; 3: metrics as GazeErrors
    # Versions 1 and 2 read as they are: their metrics were gaze_errors' dicts, whose keys are
    # GazeErrors' fields (now checked one by one); a version-1 card has no box_maps (None).
    READS_FROM: typing.ClassVar[int] = 1
    card: ModelCard
    params: int
    macs: int
    files: typing.Dict[str, FileRecord]
    metrics: typing.Dict[str, GazeErrors]
    training: TrainingRecord
    toolchain: dict
    command: typing.List[str]
    seconds: typing.Dict[str, float]

    @property
    def model(self):
        return self.card.model

    @property
    def mode(self):
        return self.card.mode


@dataclasses.dataclass
class OutputMarker:
    """MARKER, in every output folder: which command wrote it (``tool``), from which inputs
    (resolved paths; None in a marker of the first format, which did not record them), and the
    entries it wrote, the only ones a later run of that command replaces (zoo.artifacts.folders)."""
    KIND: typing.ClassVar[str] = "zoo.output_marker"
    SCHEMA_VERSION: typing.ClassVar[int] = 2  # 1: {"tool", "schema_version", "entries"}, no kind
    READS_FROM: typing.ClassVar[int] = 1
    tool: str
    inputs: typing.Optional[typing.List[str]]
    entries: typing.List[str]

    @staticmethod
    def upgrade(value, version):
        return {**value, "inputs": None}  # version 1 did not record the inputs
