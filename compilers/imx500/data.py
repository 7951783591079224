"""Where the IMX500 adapter's calibration and evaluation inputs come from (in the MCT child):
a GazeCapture root through the recipes training uses (labelled, so the package's gaze error is
measured), or a folder of images resized to the input and scaled to its value range (unlabelled:
calibration and the import check only). Never random data."""
import pathlib

from compilers.imx500.graph import split_inputs
from zoo.errors import UsageError
from zoo.inference.media import IMAGE_SUFFIXES
CHECK_INPUTS = 32   # the import check's inputs (at least)
BATCH = 16


def open_source(job, specs, sensor_specs):
    kind, path = job["data"]["kind"], job["data"]["path"]
    if kind == "gazecapture":
        return GazeSource(path, specs, sensor_specs, job["calibration_frames"])
    return ImageSource(path, specs, job["input_ranges"], job["calibration_frames"])


class GazeSource:
    """Frames of a GazeCapture root, made into each input by its recipe (zoo.data)."""
    labelled = True

    def __init__(self, root, specs, sensor_specs, frames):
        from zoo.data import load_index
        if any(spec.recipe is None for spec in specs):
            raise UsageError("a GazeCapture root as --calibration-data needs a recipe for each input; "
                             "pass --recipe (see --help)")
        self.root, self.specs, self.sensor_specs = pathlib.Path(root), specs, sensor_specs
        self.index = load_index(self.root)
        self.calibration_count = min(frames, self.index.split_counts()["train"])
        self.check_count = min(CHECK_INPUTS, self.index.split_counts()["train"])
        if not self.check_count:
            raise UsageError(f"{root} has no valid training frames to calibrate on")

    def describe(self):
        return f"GazeCapture root {self.root}, train split"

    def _dataset(self, specs, split, batch, limit=None, **options):
        from zoo.data import make_dataset
        return make_dataset(self.index, specs, split, batch, limit=limit, progress=False, **options)

    def check_inputs(self, specs=None):
        """The first training frames as one batch for ``specs`` (default: the model's own)."""
        specs = specs or self.specs
        (inputs, _), = self._dataset(specs, "train", self.check_count, self.check_count).take(1)
        return {name: value.numpy() for name, value in inputs.items()}

    def calibration_batches(self):
        for inputs, _ in self._dataset(self.sensor_specs, "train", BATCH, self.calibration_count):
            yield [array.numpy() for array in split_inputs(inputs, self.sensor_specs)]

    def training_batches(self):
        from zoo import GAZE_SCALE_CM
        sensor = self.sensor_specs
        return self._dataset(sensor, "train", 32, shuffle=True, seed=0).map(
            lambda inputs, labels: (tuple(split_inputs(inputs, sensor)), labels / GAZE_SCALE_CM))

    def predict_cm(self, predictors, specs):
        from zoo.inference.evaluate import predict_cm
        return predict_cm(predictors, self.index, specs, "test")

    def median_face_grid(self):
        """The training split's median face grid, 0-indexed (column, row, width, height) cells."""
        import numpy as np
        return [int(v) for v in np.round(np.median(self.index.select("train").grid, axis=0))]


class ImageSource:
    """Photos from a folder, each resized to the input and scaled linearly from 0..255 to the
    input's value range. With fewer photos than inputs wanted, random crops and mirror images of
    them make up the rest (seeded, so a run is reproducible)."""
    labelled = False

    def __init__(self, folder, specs, ranges, frames):
        self.folder, self.specs, self.sensor_specs, self.ranges = pathlib.Path(folder), specs, specs, ranges
        self.paths = image_files(self.folder)
        for spec in specs:
            if len(spec.shape) != 3 or spec.shape[2] not in (1, 3):
                raise UsageError(f"input {spec.name} has shape {list(spec.shape)}, not an image of 1 or 3 "
                                 "channels: a folder of images cannot feed it; give a GazeCapture root and "
                                 "--recipe")
        self.calibration_count, self.check_count = max(frames, 1), CHECK_INPUTS

    def describe(self):
        return f"{len(self.paths)} images in {self.folder}" + (
            ", with random crops and mirror images" if len(self.paths) < self.calibration_count else "")

    def _arrays(self, count, seed):
        import numpy as np
        from PIL import Image
        rng = np.random.default_rng(seed)
        images = [Image.open(path).convert("RGB") for path in self.paths]
        batch = {spec.name: [] for spec in self.specs}
        for number in range(count):
            image = images[number % len(images)]
            if number >= len(images):
                image = _random_view(image, rng)
            for spec in self.specs:
                low, high = self.ranges[spec.name]
                view = image.convert("L") if spec.shape[2] == 1 else image
                pixels = np.asarray(view.resize(spec.shape[1::-1], Image.BILINEAR), np.float32)
                batch[spec.name].append(low + pixels.reshape(spec.shape) / 255.0 * (high - low))
        return {name: np.stack(values) for name, values in batch.items()}

    def check_inputs(self, specs=None):
        return self._arrays(self.check_count, seed=1)  # the sensor is fed the model's own inputs

    def calibration_batches(self):
        arrays = self._arrays(self.calibration_count, seed=0)
        for start in range(0, self.calibration_count, BATCH):
            yield [arrays[spec.name][start:start + BATCH] for spec in self.specs]

    def training_batches(self):
        raise UsageError("--method qat needs labelled data: give a GazeCapture root as --calibration-data")


def _random_view(image, rng):
    """A random crop of 60-100% of the side, mirrored half the time."""
    from PIL import ImageOps
    side = rng.uniform(0.6, 1.0)
    width, height = image.size
    w, h = max(1, int(width * side)), max(1, int(height * side))
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    view = image.crop((left, top, left + w, top + h))
    return ImageOps.mirror(view) if rng.random() < 0.5 else view


def image_files(folder):
    """The readable image files directly in ``folder``; UsageError when there are none (the parent
    calls this before any work, so a bad folder fails in a second)."""
    from PIL import Image, UnidentifiedImageError
    folder = pathlib.Path(folder)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except (OSError, UnidentifiedImageError, SyntaxError) as error:
            raise UsageError(f"{path}: not a readable image ({error}); remove it from the folder") from None
    if not paths:
        raise UsageError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}) and is not a "
                         "GazeCapture root; give a folder of photos or a GazeCapture root as --calibration-data")
    return paths
