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
import math
import threading
from collections import OrderedDict
from typing import Any

from imm_faces.emulator.images import (
    BUDGET,
    DecodeBudget,
    ImageLimitError,
    NotAnImageError,
    decoded_bytes,
    draft,
    load,
    open_source,
    reduce,
    upright,
)
from imm_faces.runtime.oss_process import AutoOrient, Crop, ProcessError, Quality, Resize, Step
from imm_faces.runtime.rules import IMG_MAX_OUTPUT_PIXELS, upright_size

_ORIENTATION = "imm-faces-orientation"  # where a cached image keeps its source's EXIF orientation
DEFAULT_QUALITY = 90  # inferred: what a re-encoded JPEG gets without a quality step


def output_size(steps: list[Step], width: int, height: int, orientation: int) -> tuple[int, int]:
    """The size the steps make of a ``width`` x ``height`` source (as stored, with this EXIF orientation).
    :class:`ProcessError` when a crop starts outside the image, or a resize or the result is over OSS's
    :data:`~imm_faces.runtime.rules.IMG_MAX_OUTPUT_PIXELS` (4,096 x 4,096 at most, exactly that allowed): known
    from the header, before any pixel is decoded. OSS documents the limit for resizing; the emulator applies it
    to every result (inferred: otherwise ``quality,q_70`` of a 144-million-pixel source would answer one)."""
    w, h = width, height
    for step in steps:
        if isinstance(step, AutoOrient) and step.on:
            w, h = upright_size(w, h, orientation)
        elif isinstance(step, Crop):
            if step.x >= w or step.y >= h:
                raise ProcessError(f"crop: the start ({step.x}, {step.y}) is outside the {w} x {h} image")
            w, h = min(step.w, w - step.x), min(step.h, h - step.y)
        elif isinstance(step, Resize):
            w, h = step.size(w, h)
            _check_output("resize", w, h)
    _check_output("the result", w, h)
    return w, h


def _check_output(what: str, width: int, height: int) -> None:
    if width * height > IMG_MAX_OUTPUT_PIXELS:
        raise ProcessError(f"{what}: {width} x {height} is over OSS's {IMG_MAX_OUTPUT_PIXELS} pixels (4096 x 4096)")


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


def _apply(img: Any, steps: list[Step], scale: float, orientation: int) -> tuple[Any, int]:
    """(the image after the steps, the JPEG quality to write it with); ``scale`` is decoded pixels per source
    pixel (below 1 for a source decoded or reduced small), until a resize gives the size asked for. The size
    of every step was checked by :func:`output_size`."""
    from PIL import Image

    quality = DEFAULT_QUALITY
    for step in steps:
        if isinstance(step, AutoOrient) and step.on:
            img = upright(img, orientation)
            orientation = 1
        elif isinstance(step, Crop):
            w, h = round(img.width / scale), round(img.height / scale)
            box = (step.x, step.y, min(w, step.x + step.w), min(h, step.y + step.h))
            img = img.crop(tuple(round(v * scale) for v in box))
        elif isinstance(step, Resize):
            w, h = round(img.width / scale), round(img.height / scale)
            img = img.resize(step.size(w, h), Image.Resampling.LANCZOS, reducing_gap=2.0)
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

    MAX_PIXELS = 16_000_000

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
    data: bytes,
    steps: list[Step],
    *,
    source: tuple[object, ...] | None = None,
    cache: DecodedSources | None = None,
    budget: DecodeBudget = BUDGET,
) -> bytes:
    """The processed image as a JPEG; :class:`ProcessError` says why one cannot be made. ``source`` identifies
    the object (for ``cache``, which holds its decoded pixels for the next process of it). Every limit is
    checked on the header before decoding; the decode and what is made of it are held in ``budget``."""
    try:
        src = open_source(data)
    except (ImageLimitError, NotAnImageError) as exc:
        raise _refusal(exc) from None
    try:
        out_w, out_h = output_size(steps, src.width, src.height, src.orientation)
        need = _decode_scale(steps, src.width, src.height, src.orientation)
        draft(src, need)
        key = None if source is None or cache is None else (*source, src.image.size, src.image.mode)
        img = cache.get(key) if cache is not None and key is not None else None
        # Reduced right after decoding to twice the pixels needed (as resize's reducing_gap would), so that the
        # budget holds the decode, its reduced copy and the result (RGB, and its JPEG).
        factor = math.floor(src.image.size[0] / src.width / (2 * need))
        decoded = 0 if img is not None else decoded_bytes(src)
        reduced = decoded // factor**2 if factor >= 2 else 0
        with budget.hold(decoded + reduced + out_w * out_h * 8):
            if img is None:
                img = load(src)
                if cache is not None and key is not None and img.width * img.height <= cache.MAX_PIXELS // 2:
                    kept = img.copy()  # a copy: the source is closed below, and its bytes let go
                    kept.info[_ORIENTATION] = src.orientation  # the object's, with its pixels
                    cache.put(key, kept)
            orientation = img.info.get(_ORIENTATION, src.orientation)  # a cached image's own
            if factor >= 2:
                img = reduce(img, factor)
            img, quality = _apply(img, steps, img.width / src.width, orientation)
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=quality)
            return out.getvalue()
    except ProcessError:
        raise
    except (ImageLimitError, NotAnImageError) as exc:
        raise _refusal(exc) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ProcessError(f"the object is not an image OSS can process ({exc.__class__.__name__})") from None
    finally:
        src.close()


def _refusal(exc: Exception) -> ProcessError:
    if isinstance(exc, NotAnImageError):
        return ProcessError(f"the object is not an image OSS can process ({exc})")
    return ProcessError(str(exc))
