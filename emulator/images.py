"""Decoding images within bounds, for everything in the emulator that looks at pixels: OSS's image processing
(:mod:`~imm_faces.emulator.oss_img`) and face analysis (indexing, SearchImageFigureCluster).

- A source is judged by its header before any pixel is decoded: OSS's documented source limits
  (:data:`~imm_faces.runtime.rules.IMG_MAX_SOURCE_BYTES`, ``_SIDE`` and ``_PIXELS``; an animated image counts
  width x height x frames, as OSS counts it).
- A JPEG is decoded at the smallest scale (1/2 to 1/8, ``Image.draft``) that still gives the size needed.
- Decoded pixels held at once, over the whole process, stay within :data:`DECODE_BUDGET_BYTES` (ours: OSS's limits
  allow a 250-million-pixel source, a gigabyte as Pillow holds RGB). A decode waits for room, at most
  :data:`DECODE_WAIT_SECONDS`; one that could never fit is refused by its header, before decoding.
- A decoded image much larger than needed is reduced right away (``Image.reduce``, strip by strip for modes it
  cannot reduce), so that the steps after it (turning upright, converting) work on the size needed, not on a
  copy of the whole source.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from imm_faces.runtime.rules import (
    EXIF_ORIENTATION_TAG,
    IMG_MAX_SOURCE_BYTES,
    IMG_MAX_SOURCE_PIXELS,
    IMG_MAX_SOURCE_SIDE,
)

DECODE_BUDGET_BYTES = 576 * 1024 * 1024  # one 144-million-pixel RGB source (Pillow holds 4 bytes a pixel)
DECODE_WAIT_SECONDS = 60.0
# Bytes Pillow holds per pixel: 1 for these modes, 2 for 16-bit grey, 4 for every other (RGB is stored as RGBX).
_NARROW_MODES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
STRIP_ROWS = 256  # rows converted at a time when a mode must be converted before it can be reduced


# Pillow refuses to open an image of more than twice Image.MAX_IMAGE_PIXELS (178,956,970 pixels by default): a
# decompression-bomb guard the emulator keeps (it is process-wide; changing it would change it for every Pillow
# user in the process). So a source between that and OSS's 250 million pixels is refused here, not by OSS.
_PILLOW_LIMIT = (
    "the source image is over Pillow's decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS, 178956970 pixels by "
    f"default), which the emulator keeps (OSS's own limit is {IMG_MAX_SOURCE_PIXELS} pixels)"
)


class ImageLimitError(ValueError):
    """A source over a limit (OSS's, or the emulator's decode budget): the message names the limit."""


class NotAnImageError(ValueError):
    """Bytes Pillow cannot read as an image (the message names what it said)."""


def pixel_bytes(mode: str) -> int:
    return _NARROW_MODES.get(mode, 4)


class DecodeBudget:
    """Bytes of decoded pixels held at once (thread-safe). :meth:`hold` waits for room up to ``wait`` seconds."""

    def __init__(self, total: int, wait: float = DECODE_WAIT_SECONDS) -> None:
        self.total = total
        self.wait = wait
        self.used = 0
        self.peak = 0
        self._room = threading.Condition()

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        if size > self.total:
            raise ImageLimitError(
                f"decoding it would take {size // 2**20} MiB; the emulator decodes at most "
                f"{self.total // 2**20} MiB of pixels at once"
            )
        end = time.monotonic() + self.wait
        with self._room:
            while self.used + size > self.total:
                left = end - time.monotonic()
                if left <= 0:
                    raise ImageLimitError(
                        f"the emulator is decoding other images ({self.used // 2**20} MiB of "
                        f"{self.total // 2**20} MiB); try again"
                    )
                self._room.wait(left)
            self.used += size
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._room:
                self.used -= size
                self._room.notify_all()


BUDGET = DecodeBudget(DECODE_BUDGET_BYTES)


def return_freed_memory() -> None:
    """Make glibc give large freed blocks back to the system (Linux; elsewhere nothing to do). Its mmap threshold
    otherwise grows to the size of the largest block freed (Pillow holds a decode in 16 MiB blocks), after which
    such blocks come from the heap and stay in the process: four thumbnails of a large source left 2.9 GB
    resident. A fixed threshold keeps every block of 1 MiB or more mmapped, returned when freed."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold = -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, 1024 * 1024)


@dataclass
class Source:
    """An image whose header is read and checked, nothing decoded yet. ``width`` and ``height`` as stored;
    ``orientation`` its EXIF Orientation (1 when absent)."""

    image: Any  # PIL.Image.Image, not loaded
    width: int
    height: int
    orientation: int
    format: str

    def close(self) -> None:
        self.image.close()


def header_exif(img: Any) -> Any:
    """An opened image's EXIF, read without decoding its pixels. Pillow's PNG reader decodes the whole image to
    look for an eXIf chunk after the pixel data (a 12,000 x 12,000 PNG: 576 MB, outside any budget); the PNG
    specification places the chunk before them, so one that comes after is not read here."""
    from PIL import Image

    if img.format == "PNG" and "exif" not in img.info:
        return Image.Exif()
    return img.getexif()


def open_source(data: bytes) -> Source:
    """Read an image's header and check it against OSS's source limits (:class:`ImageLimitError`);
    :class:`NotAnImageError` when it is not an image."""
    from PIL import Image, UnidentifiedImageError
    from PIL.Image import DecompressionBombError

    if len(data) > IMG_MAX_SOURCE_BYTES:
        raise ImageLimitError(f"the source image is larger than {IMG_MAX_SOURCE_BYTES // (1024 * 1024)} MB")
    try:
        img: Any = Image.open(io.BytesIO(data))
        width, height = img.size
        frames = img.n_frames if getattr(img, "is_animated", False) else 1
        orientation = header_exif(img).get(EXIF_ORIENTATION_TAG, 1)
    except DecompressionBombError:
        raise ImageLimitError(_PILLOW_LIMIT) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NotAnImageError(exc.__class__.__name__) from None
    if max(width, height) > IMG_MAX_SOURCE_SIDE or width * height * frames > IMG_MAX_SOURCE_PIXELS:
        img.close()
        raise ImageLimitError(
            f"the source image is over {IMG_MAX_SOURCE_SIDE} pixels a side or "
            f"{IMG_MAX_SOURCE_PIXELS} pixels (width x height x frames)"
        )
    return Source(img, width, height, orientation if isinstance(orientation, int) else 1, img.format or "")


def draft(source: Source, need: float) -> tuple[int, int]:
    """Ask a JPEG to decode at the smallest scale that keeps ``need`` (a fraction of the stored size, <= 1);
    the size it will decode at (the stored size for other formats)."""
    img = source.image
    if source.format == "JPEG" and need < 1.0:
        img.draft("RGB", (max(1, math.ceil(source.width * need)), max(1, math.ceil(source.height * need))))
    return img.size  # type: ignore[no-any-return]


def decoded_bytes(source: Source) -> int:
    """Bytes the decode will hold (after :func:`draft`)."""
    width, height = source.image.size
    return int(width * height * pixel_bytes(source.image.mode))


def load(source: Source) -> Any:
    """Decode. The caller holds the bytes (:func:`decoded_bytes`) in a :class:`DecodeBudget` meanwhile."""
    from PIL.Image import DecompressionBombError

    try:
        source.image.load()
    except DecompressionBombError:
        raise ImageLimitError(_PILLOW_LIMIT) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NotAnImageError(exc.__class__.__name__) from None
    return source.image


def reduce(img: Any, factor: int) -> Any:
    """``img`` shrunk ``factor`` times each way by averaging (no copy of the whole image is made: modes Pillow
    cannot reduce are converted a strip of rows at a time)."""
    from PIL import Image

    if factor < 2:
        return img
    if img.mode in ("L", "LA", "RGB", "RGBA", "RGBa", "La", "I", "F", "CMYK", "YCbCr", "PA"):
        return img.reduce(factor)
    target = "RGBA" if img.mode == "P" and "transparency" in img.info else ("L" if img.mode == "1" else "RGB")
    width, height = img.size
    out = Image.new(target, (math.ceil(width / factor), math.ceil(height / factor)))
    rows = max(factor, STRIP_ROWS // factor * factor)
    for top in range(0, height, rows):
        strip = img.crop((0, top, width, min(height, top + rows))).convert(target)
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


def upright(img: Any, orientation: int) -> Any:
    """``img`` turned upright by an EXIF orientation read from its source (a reduced image has no EXIF), as
    ``ImageOps.exif_transpose`` turns it."""
    from PIL.Image import Transpose

    method = {
        2: Transpose.FLIP_LEFT_RIGHT,
        3: Transpose.ROTATE_180,
        4: Transpose.FLIP_TOP_BOTTOM,
        5: Transpose.TRANSPOSE,
        6: Transpose.ROTATE_270,
        7: Transpose.TRANSVERSE,
        8: Transpose.ROTATE_90,
    }.get(orientation)
    return img if method is None else img.transpose(method)


@contextmanager
def upright_rgb(
    data: bytes, max_pixels: int, extra_per_pixel: int = 0, budget: DecodeBudget = BUDGET
) -> Iterator[tuple[Any, float]]:
    """The image upright in RGB, at most ``max_pixels`` (scaled down, keeping its proportions, when larger), and
    its scale (its pixels per source pixel), for the time of the ``with`` block. The budget holds the decode and
    the result, plus ``extra_per_pixel`` bytes per pixel of the result for what the caller makes of it."""
    source = open_source(data)
    try:
        need = min(1.0, math.sqrt(max_pixels / (source.width * source.height)))
        draft(source, need)
        result_pixels = min(max_pixels, source.width * source.height)
        with budget.hold(decoded_bytes(source) + result_pixels * (4 + extra_per_pixel)):
            img = load(source)
            scale = img.size[0] / source.width
            if img.width * img.height > max_pixels:
                img = reduce(img, max(2, math.ceil(scale / need)))
                scale = img.size[0] / source.width
            img = upright(img, source.orientation)
            yield (img if img.mode == "RGB" else img.convert("RGB")), scale
    finally:
        source.close()
