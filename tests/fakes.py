"""Test doubles. The fake analyzer lives here, in tests/ only: it reads faces from a sidecar JSON file.

A "photo" in these tests is a small real PNG plus ``<name>.faces.json`` listing its faces: an embedding
seed (faces with the same seed are the same person) and optionally a quality (default 0.9), a box side in
pixels (``size``, default 100) and a head pose (``pose``: [pitch, roll, yaw], default frontal), so by default
a face is "good" by IMM's rule for starting a face group. Embeddings are deterministic unit vectors (the same
in every process: no ``hash()``), so same-person faces are ~0.05 apart and different people ~1.4 apart.
"""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from imm_faces.emulator.analysis import FaceRecord, ImageAnalysis, image_metadata


def person_embedding(person: int, jitter: int = 0) -> np.ndarray:
    base = np.random.default_rng(person).normal(size=128)
    noise = np.random.default_rng(10_000 + jitter).normal(scale=0.003, size=128)
    vec = base / np.linalg.norm(base) + noise
    return vec.astype(np.float32)


class SidecarAnalyzer:
    faces_available = True

    def __init__(self, root: Path) -> None:
        self.root = root

    def analyze(self, data: bytes, filename: str) -> ImageAnalysis:
        meta = image_metadata(data, filename)
        sidecars = list(self.root.rglob(filename + ".faces.json"))
        faces: list[FaceRecord] = []
        if sidecars:
            for i, face in enumerate(json.loads(sidecars[0].read_text())):
                faces.append(
                    FaceRecord(
                        embedding=person_embedding(
                            face["person"], jitter=zlib.crc32(f"{filename}/{i}".encode()) % 1000
                        ),
                        boundary=(10 + 120 * i, 5, face.get("size", 100), face.get("size", 100)),
                        quality=face.get("quality", 0.9),
                        sharpness=0.5,
                        head_pose=tuple(face.get("pose", (0.0, 0.0, 0.0))),
                        age=face.get("age", 30),
                        age_sd=3,
                        gender=face.get("gender", "female"),
                        gender_confidence=0.9,
                    )
                )
        return ImageAnalysis(
            meta.media_type, meta.content_type, meta.width, meta.height, meta.orientation, meta.exif, faces
        )


def write_photo(root: Path, bucket: str, key: str, faces: list[dict[str, object]]) -> str:
    """Write a PNG at ``<root>/<bucket>/<key>`` with its faces sidecar; return its oss:// URI."""
    path = root / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (len(key) * 7 % 255, 90, 160)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    (path.parent / (path.name + ".faces.json")).write_text(json.dumps(faces))
    return f"oss://{bucket}/{key}"
