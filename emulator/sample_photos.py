"""Real sample photos for the tests, the quickstart and ``imm-faces rehearse``, fetched from PyPI, never committed.

The photos are the ``tests/test_images`` folder of the ``face_recognition`` 1.3.0 source distribution
(MIT licence): six photos of Barack Obama (two of them partial faces, one a 32-bit PNG) and one of Joe Biden.
``pip download`` fetches the archive through whatever index this machine's pip is configured for; its SHA-256
is checked, and the photos are cached (``$IMM_FACES_CACHE`` or ``~/.cache/imm-faces``), so it happens once.

:func:`write_sample_bucket` lays out a bucket folder from them, adding three derived files made on the fly: a
WebP copy of the Biden photo (so each person has at least two photos), an Obama photo stored rotated with an
EXIF Orientation tag (found only when orientation is applied), and a generated landscape with no face.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

SDIST = "face_recognition-1.3.0.tar.gz"
SDIST_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
PHOTO_DIR = "face_recognition-1.3.0/tests/test_images/"
PHOTOS = {  # file in the archive: the person in it
    "obama.jpg": "obama",
    "obama2.jpg": "obama",
    "obama3.jpg": "obama",
    "obama_partial_face.jpg": "obama",
    "obama_partial_face2.jpg": "obama",
    "32bit.png": "obama",
    "biden.jpg": "biden",
}


class SamplePhotosError(RuntimeError):
    """The archive could not be fetched or did not match its checksum."""


def cache_dir() -> Path:
    return Path(os.environ.get("IMM_FACES_CACHE") or Path.home() / ".cache" / "imm-faces") / "sample-photos"


def fetch_photos() -> Path:
    """The folder holding the cached photos; fetched and checked on first use."""
    target = cache_dir()
    if all((target / name).is_file() for name in PHOTOS):
        return target
    with tempfile.TemporaryDirectory(prefix="imm-faces-photos-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            "-d",
            tmp,
            "face_recognition==1.3.0",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        archive = Path(tmp) / SDIST
        if result.returncode != 0 or not archive.is_file():
            raise SamplePhotosError(f"`pip download face_recognition==1.3.0` failed: {result.stderr.strip()}")
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != SDIST_SHA256:
            raise SamplePhotosError(f"{SDIST} has SHA-256 {digest}, expected {SDIST_SHA256}")
        staging = Path(tmp) / "photos"
        staging.mkdir()
        with tarfile.open(archive) as tar:
            for name in PHOTOS:
                member = tar.extractfile(PHOTO_DIR + name)
                if member is None:
                    raise SamplePhotosError(f"{SDIST} has no {PHOTO_DIR + name}")
                (staging / name).write_bytes(member.read())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(staging, target)
    return target


@dataclass(frozen=True)
class SampleBucket:
    """What :func:`write_sample_bucket` wrote: object keys by person, and the keys with no face."""

    people: dict[str, list[str]]
    no_face: list[str]

    @property
    def keys(self) -> list[str]:
        return sorted([k for keys in self.people.values() for k in keys] + self.no_face)


def write_sample_bucket(folder: Path, prefix: str = "") -> SampleBucket:
    """Write the sample photos (plus the derived ones) under ``folder/prefix``; return what is where."""
    from PIL import Image

    source = fetch_photos()
    base = folder / prefix
    base.mkdir(parents=True, exist_ok=True)
    people: dict[str, list[str]] = {}
    for name, person in PHOTOS.items():
        shutil.copyfile(source / name, base / name)
        people.setdefault(person, []).append(prefix + name)
    with Image.open(source / "biden.jpg") as img:
        img.save(base / "biden.webp", format="WEBP", quality=90)
    people["biden"].append(prefix + "biden.webp")
    with Image.open(source / "obama.jpg") as img:
        # Stored turned a quarter clockwise; Orientation 8 tells a viewer to turn it back.
        exif = Image.Exif()
        exif[0x0112] = 8
        img.transpose(Image.Transpose.ROTATE_270).save(base / "obama-rotated.jpg", format="JPEG", exif=exif)
    people["obama"].append(prefix + "obama-rotated.jpg")
    _landscape().save(base / "landscape.png", format="PNG")
    return SampleBucket({p: sorted(keys) for p, keys in people.items()}, [prefix + "landscape.png"])


def _landscape() -> Image.Image:
    """A sky-and-hills picture with no face in it."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (640, 480), (135, 190, 235))
    draw = ImageDraw.Draw(img)
    draw.ellipse((480, 40, 560, 120), fill=(250, 220, 90))
    draw.polygon([(0, 330), (160, 220), (330, 320), (470, 240), (640, 330), (640, 480), (0, 480)], fill=(70, 130, 60))
    return img
