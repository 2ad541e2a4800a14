"""OSS image processing in the emulator: a GetObject with ``x-oss-process`` answers the processed image, as OSS
does, for the operations :mod:`imm_faces.runtime.oss_process` reads (auto-orient, crop, resize, quality, format).

Made with Pillow, the steps applied in the order written. A JPEG is decoded at the smallest scale (1/2 to 1/8,
``Image.draft``) that still gives the output at full sharpness: the cost of a thumbnail of a 12 MP photo is
then the JPEG's entropy decoding, not a full decode and resize. The source limits are OSS's
(:data:`~imm_faces.runtime.rules.IMG_MAX_SOURCE_BYTES` and the others); the output is a JPEG.

Inferred where OSS's documentation is silent: a crop is cut at the image's edges and one starting outside the
image is refused; errors are 400 ``InvalidArgument`` with a message naming the operation.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import Any

from imm_faces.runtime.oss_process import AutoOrient, Crop, ProcessError, Quality, Resize, Step
from imm_faces.runtime.rules import (
    EXIF_ORIENTATION_TAG,
    IMG_MAX_OUTPUT_PIXELS,
    IMG_MAX_SOURCE_BYTES,
    IMG_MAX_SOURCE_PIXELS,
    IMG_MAX_SOURCE_SIDE,
    upright_size,
)

DEFAULT_QUALITY = 90  # inferred: what a re-encoded JPEG gets without a quality step


def _decode_scale(steps: list[Step], width: int, height: int, orientation: int) -> float:
    """The smallest fraction of the source's pixels the steps need: the first resize's output against the
    region it resizes (1 when nothing is resized, or when a step before it cannot be followed)."""
    w, h = width, height
    for step in steps:
        if isinstance(step, AutoOrient) and step.on:
            w, h = upright_size(w, h, orientation)
        elif isinstance(step, Crop):
            w, h = max(1, min(step.w, w - step.x)), max(1, min(step.h, h - step.y))
        elif isinstance(step, Resize):
            out_w, out_h = step.size(w, h)
            return min(1.0, max(out_w / w, out_h / h))
    return 1.0


def _apply(img: Any, steps: list[Step], scale: float) -> tuple[Any, int]:
    """(the image after the steps, the JPEG quality to write it with); ``scale`` is decoded pixels per source
    pixel (below 1 for a JPEG decoded small), until a resize gives the size asked for."""
    from PIL import Image, ImageOps

    quality = DEFAULT_QUALITY
    for step in steps:
        if isinstance(step, AutoOrient) and step.on:
            img = ImageOps.exif_transpose(img) or img
        elif isinstance(step, Crop):
            w, h = round(img.width / scale), round(img.height / scale)
            if step.x >= w or step.y >= h:
                raise ProcessError(f"crop: the start ({step.x}, {step.y}) is outside the {w} x {h} image")
            box = (step.x, step.y, min(w, step.x + step.w), min(h, step.y + step.h))
            img = img.crop(tuple(round(v * scale) for v in box))
        elif isinstance(step, Resize):
            w, h = round(img.width / scale), round(img.height / scale)
            out_w, out_h = step.size(w, h)
            if out_w * out_h > IMG_MAX_OUTPUT_PIXELS:
                raise ProcessError(f"resize: {out_w} x {out_h} is over OSS's {IMG_MAX_OUTPUT_PIXELS} pixels")
            img = img.resize((out_w, out_h), Image.Resampling.LANCZOS, reducing_gap=2.0)
            scale = 1.0
        elif isinstance(step, Quality):
            quality = step.q
        # Format: the output is always a JPEG
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGBA")
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        img = background
    return img, quality


class DecodedSources:
    """The last sources decoded (at the scale a process needed), so that the several thumbnails asked of one photo
    in a row (a report's cover crop, then its strip picture) decode it once. Keyed by the object's identity
    (path, size, modification time) and the decoded size; bounded by :data:`MAX_PIXELS` in all; thread-safe."""

    MAX_PIXELS = 48_000_000

    def __init__(self) -> None:
        self._images: OrderedDict[tuple[object, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> Any:
        with self._lock:
            img = self._images.get(key)
            if img is not None:
                self._images.move_to_end(key)
            return img

    def put(self, key: tuple[object, ...], img: Any) -> None:
        with self._lock:
            self._images[key] = img
            self._images.move_to_end(key)
            while len(self._images) > 1 and sum(i.width * i.height for i in self._images.values()) > self.MAX_PIXELS:
                self._images.popitem(last=False)


def process(
    data: bytes, steps: list[Step], *, source: tuple[object, ...] | None = None, cache: DecodedSources | None = None
) -> bytes:
    """The processed image as a JPEG; :class:`ProcessError` says why one cannot be made. ``source`` identifies
    the object (for ``cache``, which holds its decoded pixels for the next process of it)."""
    from PIL import Image, UnidentifiedImageError
    from PIL.Image import DecompressionBombError

    if len(data) > IMG_MAX_SOURCE_BYTES:
        raise ProcessError(f"the source image is larger than {IMG_MAX_SOURCE_BYTES // (1024 * 1024)} MB")
    try:
        img: Any = Image.open(io.BytesIO(data))
        width, height = img.size
        if max(width, height) > IMG_MAX_SOURCE_SIDE or width * height > IMG_MAX_SOURCE_PIXELS:
            raise ProcessError(f"the source image is over {IMG_MAX_SOURCE_SIDE} pixels a side or "
                               f"{IMG_MAX_SOURCE_PIXELS} pixels")  # fmt: skip
        orientation = img.getexif().get(EXIF_ORIENTATION_TAG, 1)
        need = _decode_scale(steps, width, height, orientation)
        if img.format == "JPEG" and need < 1.0:
            img.draft("RGB", (max(1, round(width * need)), max(1, round(height * need))))
        key = None if source is None or cache is None else (*source, img.size, img.mode)
        decoded = cache.get(key) if cache is not None and key is not None else None
        if decoded is None:
            img.load()
            if cache is not None and key is not None:
                cache.put(key, img)
        else:
            img = decoded
        img, quality = _apply(img, steps, img.size[0] / width)
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=quality)
        return out.getvalue()
    except (UnidentifiedImageError, DecompressionBombError, OSError, SyntaxError) as exc:
        raise ProcessError(f"the object is not an image OSS can process ({exc.__class__.__name__})") from None
