"""The face analyzer interface, and the metadata-only analyzer used when no vision extra is installed.

An analyzer turns a photo's bytes into image metadata and face records. The clustering engine only needs
the records; the real analyzer (dlib, ``imm-faces[vision]``) plugs in here, and tests inject faces with a
test double of their own.
"""

from __future__ import annotations

from typing import Protocol

from imm_faces.emulator.image_facts import FaceRecord, ImageAnalysis, exif_json, image_metadata

__all__ = [
    "FACE_ANALYSIS_UNAVAILABLE",
    "Analyzer",
    "FaceRecord",
    "ImageAnalysis",
    "MetadataAnalyzer",
    "default_analyzer",
    "exif_json",
    "image_metadata",
]

FACE_ANALYSIS_UNAVAILABLE = (
    "face analysis is unavailable in this emulator: install the vision extra (pip install 'imm-faces[vision]')"
)


class Analyzer(Protocol):
    """``faces_available`` is False when this analyzer cannot find faces (a task then fails clearly)."""

    faces_available: bool

    def analyze(self, data: bytes, filename: str) -> ImageAnalysis: ...


class MetadataAnalyzer:
    """Reads image metadata only; finds no faces."""

    faces_available = False

    def analyze(self, data: bytes, filename: str) -> ImageAnalysis:
        return image_metadata(data, filename)


def default_analyzer() -> Analyzer:
    """The best analyzer this installation has: dlib's when the vision extra is installed."""
    try:
        from imm_faces.emulator.vision import DlibAnalyzer  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return MetadataAnalyzer()
    return DlibAnalyzer()  # type: ignore[no-any-return,unused-ignore]
