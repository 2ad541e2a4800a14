"""What an analyzer finds in a photo (image metadata and face records), and the metadata every analyzer reads.

A leaf module: the analyzer interface (:mod:`imm_faces.emulator.analysis`), the dlib analyzer
(:mod:`imm_faces.emulator.vision`) and the indexer all build on it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from imm_faces.emulator.images import header_exif
from imm_faces.runtime.rules import EXIF_ORIENTATION_TAG, upright_size


@dataclass(frozen=True)
class FaceRecord:
    """One face found in an image. Boundary is (left, top, width, height) in pixels; ages in years."""

    embedding: npt.NDArray[np.float32]
    boundary: tuple[int, int, int, int]
    quality: float
    sharpness: float = 0.0
    confidence: float = 1.0
    age: float | None = None
    age_sd: float | None = None
    gender: str | None = None
    gender_confidence: float | None = None
    head_pose: tuple[float, float, float] | None = None  # pitch, roll, yaw in degrees


@dataclass(frozen=True)
class ImageAnalysis:
    media_type: str
    content_type: str
    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    exif: dict[str, str] = field(default_factory=dict)
    faces: list[FaceRecord] = field(default_factory=list)


_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def image_metadata(data: bytes, filename: str) -> ImageAnalysis:
    """Size, type, orientation and EXIF of an image (width/height after EXIF orientation); others pass."""
    from PIL import Image, UnidentifiedImageError
    from PIL.ExifTags import TAGS

    try:
        with Image.open(io.BytesIO(data)) as img:
            exif = header_exif(img)  # never a decode of the pixels
            orientation = int(exif.get(EXIF_ORIENTATION_TAG, 1) or 1)
            width, height = upright_size(*img.size, orientation)
            tags = {str(TAGS.get(k, k)): str(v)[:200] for k, v in exif.items() if not isinstance(v, bytes)}
            ctype = _CONTENT_TYPES.get(img.format or "", f"image/{(img.format or 'unknown').lower()}")
            return ImageAnalysis("image", ctype, width, height, orientation, tags)
    except (UnidentifiedImageError, OSError):
        suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        return ImageAnalysis("other", f"application/{suffix or 'octet-stream'}")


def exif_json(exif: dict[str, str]) -> str:
    """IMM's EXIF field: a JSON text of ``{"Tag": {"value": "..."}}``."""
    return json.dumps({k: {"value": v} for k, v in sorted(exif.items())}, ensure_ascii=False, separators=(",", ":"))
