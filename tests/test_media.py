"""zoo.inference.media and zoo.data.images (issue #23, and #22 item 3): photos turned upright by
their EXIF orientation (a rotated copy gives `zoo predict` the same faces), the pixel limit read
from headers without decoding, and a video cut short kept only with --keep-going."""
import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import SHARED
from hostile import make_build, run_command
from zoo.data import images

GROUP = SHARED / "images" / "face.jpg"  # four faces


def _shared(path):
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: the shared reference images must be there in CI")
        pytest.skip(f"{path} is missing (../shared)")
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_is_pillows_exif_transpose(tmp_path, orientation):
    stored = np.random.default_rng(orientation).integers(0, 255, (3, 5, 3), np.uint8)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[images.EXIF_ORIENTATION] = orientation
    image.save(tmp_path / "o.png", exif=exif.tobytes())
    assert images.exif_orientation(tmp_path / "o.png") == orientation
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    assert np.array_equal(images.upright(stored, orientation), expected)


def _predicted_boxes(build, photos, capsys):
    """{input file name: sorted face boxes} as `zoo predict --json` prints them."""
    assert run_command("zoo", ["predict", str(build), *map(str, photos), "--json"]) == 0
    boxes = {}
    for line in capsys.readouterr().out.splitlines():
        record = json.loads(line)
        boxes.setdefault(os.path.basename(record["input"]), []).append(record.get("box"))
    return {name: sorted(box for box in found if box) for name, found in boxes.items()}


def _rotated_copy(upright, path, orientation, **save):
    """``upright`` stored turned so that EXIF ``orientation`` turns it back, saved at ``path``."""
    stored = {6: np.rot90(upright, 1), 8: np.rot90(upright, -1), 3: np.rot90(upright, 2)}[orientation]
    image = Image.fromarray(np.ascontiguousarray(stored))
    exif = image.getexif()
    exif[images.EXIF_ORIENTATION] = orientation
    image.save(path, exif=exif.tobytes(), **save)
    return path


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    from zoo import data
    root = tmp_path_factory.mktemp("media")
    data.render_dataset(root / "data", subjects=3, frames=2, seed=1, progress=False)
    return make_build(root / "build", root / "data")


def test_a_photo_rotated_by_its_exif_tag_gives_the_same_faces(build, tmp_path, capsys):
    upright = np.asarray(Image.open(_shared(GROUP)).convert("RGB"))[:352]  # whole 16-pixel blocks
    Image.fromarray(upright).save(tmp_path / "upright.png")
    photos = [tmp_path / "upright.png"] + [_rotated_copy(upright, tmp_path / f"turned{o}.png", o)
                                           for o in (3, 6, 8)]
    boxes = _predicted_boxes(build, photos, capsys)
    assert len(boxes["upright.png"]) >= 3
    assert all(boxes[photo.name] == boxes["upright.png"] for photo in photos)  # lossless: the same pixels


def test_a_jpeg_photo_rotated_by_its_exif_tag_gives_the_same_faces(build, tmp_path, capsys):
    """JPEG, as phones write it: re-encoding the turned pixels moves them by a level or two, so
    the boxes may move by a few pixels; the faces are the same."""
    upright = np.asarray(Image.open(_shared(GROUP)).convert("RGB"))[:352]
    Image.fromarray(upright).save(tmp_path / "upright.jpg", quality=100, subsampling=0)
    _rotated_copy(upright, tmp_path / "turned.jpg", 6, quality=100, subsampling=0)
    boxes = _predicted_boxes(build, [tmp_path / "upright.jpg", tmp_path / "turned.jpg"], capsys)
    assert len(boxes["turned.jpg"]) == len(boxes["upright.jpg"]) >= 3
    assert np.abs(np.array(boxes["turned.jpg"]) - np.array(boxes["upright.jpg"])).max() <= 4


def test_the_size_is_read_from_the_header_as_pillow_reads_it(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "progressive.jpg", progressive=True)
    _rotated_copy(image, tmp_path / "exif.jpg", 6)  # an APP1 segment before the frame header
    for suffix in ("png", "bmp", "webp", "tif"):
        Image.fromarray(image).save(tmp_path / f"plain.{suffix}")
    for path in [_shared(GROUP), *sorted(tmp_path.iterdir())]:
        assert images.check_image(path) == Image.open(path).size, path.name
    (tmp_path / "text.png").write_text("not an image")
    assert images.check_image(tmp_path / "text.png") is None  # left to the decoder to refuse


def test_the_pixel_limit_is_named(tmp_path):
    from hostile import huge_jpeg
    path = tmp_path / "huge.jpg"
    path.write_bytes(huge_jpeg(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()))
    with pytest.raises(images.UsageError, match="65,535 x 65,535 pixels, over the limit of 268,435,456"):
        images.check_image(path)
    Image.new("L", (20_000, 20_000)).save(tmp_path / "big.tif")  # 400 M pixels: over Pillow's own limit
    with pytest.raises(images.UsageError, match="more pixels than Pillow reads, over the limit of 178,956,"):
        images.check_image(tmp_path / "big.tif")


def test_keep_going_uses_the_frames_a_cut_video_holds(build, tmp_path, capsys):
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for frame in range(60):
        writer.write(np.full((48, 64, 3), frame * 4, np.uint8))
    writer.release()
    whole = (tmp_path / "v.avi").read_bytes()
    (tmp_path / "v.avi").write_bytes(whole[:len(whole) // 2])
    argv = ["predict", str(build), str(tmp_path / "v.avi"), "--json", "--out", str(tmp_path / "p")]
    assert run_command("zoo", argv) == 2 and not (tmp_path / "p").exists()
    capsys.readouterr()
    assert run_command("zoo", [*argv, "--keep-going"]) == 0
    out, err = capsys.readouterr()
    read = len(out.splitlines())
    assert 0 < read < 60 and (tmp_path / "p" / "predictions.jsonl").read_text().count("\n") == read
    assert f"read {read} of the 60 frames its header declares" in err and "(--keep-going)" in err
