"""Image files as the project reads them, before and after decoding: the one pixel limit (every
reader of image files, zoo predict, the GazeCapture reader and the targets' calibration data, calls
``check_image`` or ``check_pixels`` before decoding, so that a header claiming 100000x100000
pixels is one line naming the limit, not an allocator's failure) and the EXIF orientation that
turns a photo upright. Headers only: no decoder, no TensorFlow."""
import os
import pathlib
import struct
import warnings

from zoo.errors import UsageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
JPEG_MAGIC, PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"
# 268 megapixels: above a 200-megapixel phone photo; one decoded 8-bit BGR copy is 768 MiB.
MAX_PIXELS = 1 << 28
JPEG_FRAME_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn (not DHT, JPG, DAC)
EXIF_ORIENTATION = 0x0112
UPRIGHT = {  # EXIF orientation -> what turns the stored pixels upright (as PIL.ImageOps.exif_transpose)
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: a[::-1].transpose(1, 0, 2),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: a[:, ::-1].transpose(1, 0, 2)}


def check_image(path):
    """(width, height) that image file ``path`` declares in its header, read without decoding it;
    None where no reader here knows the format. UsageError when that is more than MAX_PIXELS, or
    (a format only Pillow reads here) more than Pillow itself reads."""
    return check_pixels(path, _declared_size(path))


def check_pixels(path, size):
    """``size`` (width, height, or None when unknown) of image file ``path``; UsageError naming the
    limit when it has more than MAX_PIXELS pixels."""
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise _too_large(path, f"{size[0]:,} x {size[1]:,} pixels", MAX_PIXELS)
    return size


def _too_large(path, declared, limit):
    return UsageError(f"{path}: its header declares {declared}, over the limit of {limit:,} pixels an "
                      "image may have here; scale it down (or check the file)")


def _declared_size(path):
    with open(path, "rb") as file:
        head = file.read(24)
        if head.startswith(JPEG_MAGIC):
            return jpeg_size(file)
        if head.startswith(PNG_MAGIC) and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size
    except Image.DecompressionBombError:  # Pillow's own limit, below MAX_PIXELS, is the limit of its formats
        raise _too_large(path, "more pixels than Pillow reads", 2 * Image.MAX_IMAGE_PIXELS) from None
    except (OSError, SyntaxError, ValueError):
        return None


def jpeg_size(file):
    """(width, height) of the frame header (SOFn) of the JPEG open in binary ``file``, reading only
    the segments before it; None when there is none."""
    file.seek(2)
    while True:
        marker = file.read(2)
        while marker[-1:] == b"\xff":  # fill bytes before a marker
            marker = b"\xff" + file.read(1)
        if len(marker) < 2 or marker[0] != 0xFF or marker[1] in (0xD9, 0xDA):
            return None  # not a marker, or the image data (or its end) before any frame header
        if marker[1] == 0x01 or 0xD0 <= marker[1] <= 0xD8:
            continue  # markers without a length
        length = file.read(2)
        if marker[1] in JPEG_FRAME_MARKERS:
            frame = file.read(5)
            return struct.unpack(">HH", frame[3:5] + frame[1:3]) if len(frame) == 5 else None
        if len(length) < 2 or int.from_bytes(length, "big") < 2:
            return None
        file.seek(int.from_bytes(length, "big") - 2, os.SEEK_CUR)


def exif_orientation(path):
    """The EXIF orientation (1-8) of an image file; 1 (upright) when it has none."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return 1
    return orientation if orientation in UPRIGHT else 1


def upright(image, orientation):
    """``image`` (rows, columns, channels) as it is meant to be seen under EXIF ``orientation``."""
    import numpy as np
    return np.ascontiguousarray(UPRIGHT[orientation](image)) if orientation in UPRIGHT else image


def jpeg_problem(path):
    """(kind, detail) when ``path`` is not a complete JPEG, else None. Reads 3 bytes at the start,
    the headers up to the frame size and a few bytes at the end: truncated or foreign files are
    caught without decoding. A frame whose header declares more pixels than this module allows is
    a UsageError: the data is refused."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(3)
            frame = jpeg_size(handle) if head == JPEG_MAGIC else None
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(size - 32, 0))
            tail = handle.read()
    except FileNotFoundError:
        return "missing_jpeg", "no such file"
    except OSError as error:
        return "missing_jpeg", error.strerror or str(error)
    except ValueError as error:  # a frame name open() refuses, e.g. with a NUL character
        return "missing_jpeg", str(error)
    if head != JPEG_MAGIC:
        return "corrupt_jpeg", "no JPEG start marker"
    if not tail.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return "corrupt_jpeg", "no JPEG end marker (truncated?)"
    check_pixels(path, frame)
    return None


# ---- folders of photos (the targets' calibration data) ------------------------------------------

def _unreadable(path, error):
    return UsageError(f"{path}: not a readable image ({type(error).__name__}: {error}); remove it from the "
                      "folder")


def _check_photo(path):
    """Decodes ``path`` fully (a truncated or corrupt file fails here, in a second, not minutes
    into a conversion); UsageError naming Pillow's pixel limit for an image over it."""
    from PIL import Image
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                pixels = image.width * image.height
                if pixels > limit:
                    raise Image.DecompressionBombError(pixels)
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UsageError(f"{path}: the image claims more than {limit:,} pixels, the limit for a calibration "
                         "photo (Pillow's MAX_IMAGE_PIXELS); remove it or resize it") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as error:
        raise _unreadable(path, error) from None


def image_files(folder, count=None):
    """The first ``count`` (default all) image files directly in ``folder``: the photos the targets
    calibrate and check on, each decoded once to be sure it reads; UsageError when there are none
    or one is unreadable or over the pixel limit."""
    folder = pathlib.Path(folder)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())[:count]
    if not paths:
        raise UsageError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}) and is not a "
                         "GazeCapture root; give a folder of photos, a GazeCapture root or an .npy/.npz "
                         "file as --calibration-data")
    for path in paths:
        _check_photo(path)
    return paths
