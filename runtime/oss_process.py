"""OSS image processing (IMG): the ``x-oss-process`` parameter of a GetObject, for the operations this project
uses, defined once: the report writes it (:mod:`imm_faces.runtime.report.images`) and the emulator reads and
applies it (:mod:`imm_faces.emulator.oss_get`).

``image/auto-orient,1/crop,x_10,y_20,w_300,h_300/resize,m_fixed,w_112,h_112,limit_0/quality,q_70/format,jpg``:
OSS applies the operations in the order written. What each means (OSS's IMG documentation):

* ``auto-orient,1`` turns the image upright by its EXIF Orientation (``0`` keeps it as stored);
* ``crop,x_,y_,w_,h_`` keeps the ``w`` x ``h`` rectangle at (``x``, ``y``) from the top left, cut at the
  image's edges;
* ``resize,m_lfit,w_,h_`` fits the image inside ``w`` x ``h`` keeping its proportions, ``m_fixed`` makes it
  exactly ``w`` x ``h``; ``limit_1`` (the default) never enlarges, ``limit_0`` does;
* ``quality,q_`` re-encodes a JPEG at relative quality 1-100; ``format,jpg`` returns a JPEG.

Other operations and parameters exist in OSS; a process naming one of them is refused here with
:class:`ProcessError` (the emulator answers OSS's 400 ``InvalidArgument``: inferred, the documentation does not
give the code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from imm_faces.runtime.rules import IMG_MAX_SIDE, IMG_QUALITY_RANGE, whole_number

PARAMETER = "x-oss-process"
PREFIX = "image/"


class ProcessError(ValueError):
    """An ``x-oss-process`` value this project does not read: the message names the operation and the rule."""


@dataclass(frozen=True)
class AutoOrient:
    on: bool = True

    def text(self) -> str:
        return f"auto-orient,{int(self.on)}"


@dataclass(frozen=True)
class Crop:
    x: int
    y: int
    w: int
    h: int

    def text(self) -> str:
        return f"crop,x_{self.x},y_{self.y},w_{self.w},h_{self.h}"


@dataclass(frozen=True)
class Resize:
    w: int
    h: int
    mode: Literal["lfit", "fixed"] = "lfit"
    limit: bool = True

    def text(self) -> str:
        return f"resize,m_{self.mode},w_{self.w},h_{self.h}" + ("" if self.limit else ",limit_0")

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The size this makes of a ``width`` x ``height`` image."""
        if self.mode == "fixed":
            w, h = self.w, self.h
            if self.limit and (w > width or h > height):
                return width, height
            return w, h
        scale = min(self.w / width, self.h / height)
        if self.limit:
            scale = min(scale, 1.0)
        return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True)
class Quality:
    q: int

    def text(self) -> str:
        return f"quality,q_{self.q}"


@dataclass(frozen=True)
class Format:
    name: Literal["jpg"] = "jpg"

    def text(self) -> str:
        return f"format,{self.name}"


Step = AutoOrient | Crop | Resize | Quality | Format


def write(steps: list[Step]) -> str:
    """The ``x-oss-process`` value of these steps, in order."""
    return PREFIX + "/".join(step.text() for step in steps)


def _number(operation: str, name: str, text: str, low: int, high: int) -> int:
    value = whole_number(text, high)
    if value is None or value < low:
        raise ProcessError(f"{operation}: {name} must be a whole number {low}-{high}; got {text[:40]!r}")
    return value


def _options(operation: str, parts: list[str], allowed: set[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in parts:
        name, sep, value = part.partition("_")
        if not sep or name not in allowed or name in options:
            raise ProcessError(f"{operation}: {part!r} is not one of its parameters ({', '.join(sorted(allowed))})")
        options[name] = value
    return options


def _auto_orient(parts: list[str]) -> Step:
    if parts not in (["0"], ["1"]):
        raise ProcessError(f"auto-orient: the value must be 0 or 1; got {','.join(parts)!r}")
    return AutoOrient(parts == ["1"])


def _crop(parts: list[str]) -> Step:
    o = _options("crop", parts, {"x", "y", "w", "h"})
    if "w" not in o or "h" not in o:
        raise ProcessError("crop: w and h are required")
    x, y = (_number("crop", n, o.get(n, "0"), 0, MAX_OFFSET) for n in ("x", "y"))
    w, h = (_number("crop", n, o[n], 1, MAX_OFFSET) for n in ("w", "h"))
    return Crop(x, y, w, h)


def _resize(parts: list[str]) -> Step:
    o = _options("resize", parts, {"m", "w", "h", "limit"})
    mode = o.get("m", "lfit")
    if mode not in ("lfit", "fixed"):
        raise ProcessError(f"resize: m must be lfit or fixed here; got {mode!r}")
    if "w" not in o or "h" not in o:
        raise ProcessError("resize: w and h are both required here")
    limit = o.get("limit", "1")
    if limit not in ("0", "1"):
        raise ProcessError(f"resize: limit must be 0 or 1; got {limit!r}")
    w, h = (_number("resize", n, o[n], 1, IMG_MAX_SIDE) for n in ("w", "h"))
    return Resize(w, h, "fixed" if mode == "fixed" else "lfit", limit == "1")


def _quality(parts: list[str]) -> Step:
    o = _options("quality", parts, {"q"})
    if "q" not in o:
        raise ProcessError("quality: q is required here")
    return Quality(_number("quality", "q", o["q"], *IMG_QUALITY_RANGE))


def _format(parts: list[str]) -> Step:
    if parts != ["jpg"]:
        raise ProcessError(f"format: only jpg is read here; got {','.join(parts)!r}")
    return Format()


_READERS = {"auto-orient": _auto_orient, "crop": _crop, "resize": _resize, "quality": _quality, "format": _format}
MAX_OFFSET = 2**31 - 1


def read(value: str) -> list[Step]:
    """The steps of an ``x-oss-process`` value; :class:`ProcessError` names what is not read here."""
    if not value.startswith(PREFIX) or value == PREFIX:
        raise ProcessError(f"{PARAMETER} must be {PREFIX}<operation>[/<operation>...]; got {value[:60]!r}")
    steps: list[Step] = []
    for action in value[len(PREFIX) :].split("/"):
        operation, *parts = action.split(",")
        reader = _READERS.get(operation)
        if reader is None:
            raise ProcessError(f"{operation[:40]!r} is not an image operation read here ({', '.join(_READERS)})")
        steps.append(reader(parts))
    return steps
