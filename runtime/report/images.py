"""The report's pictures: OSS objects read through V4-presigned GETs, the thumbnails made by OSS's image
processing (``x-oss-process``, :mod:`imm_faces.runtime.oss_process`) and embedded as ``data:`` URIs.

Where an object is read: on Alibaba Cloud, ``https://<bucket>.oss-<region>.aliyuncs.com/<key>`` (IMM works on
buckets of its own region); on a custom endpoint that is not an Alibaba Cloud host (the emulator), path-style
``<endpoint>/<bucket>/<key>``, which the emulator serves to OSS-signed requests, image processing included. The
request is signed the same way in both cases (:mod:`imm_faces.runtime.auth.oss_signing`), so this code does not know
which one it talks to.

Thumbnails are bounded: a cover face is :data:`COVER_PX` square, a member photo :data:`PHOTO_HEIGHT_PX` high
(at most :data:`PHOTO_MAX_WIDTH_PX` wide), JPEG quality :data:`JPEG_QUALITY`. OSS makes them from the upright
photo (``auto-orient,1``), whose size the file's metadata gives (ImageWidth, ImageHeight): a few KB travel per
photo instead of the photo. When OSS cannot (a source over its limits, a format it does not read) or the size is
unknown, and Pillow (the ``report`` extra) is installed, the photo is read whole and the same thumbnails are made
here (:func:`make_thumbnails`: EXIF orientation applied, a JPEG decoded at the smallest scale that still gives
those sizes, ``Image.draft``). A Boundary is taken to be in the upright image (inferred: IMM's documentation does
not say; the emulator finds faces in the upright image, and a browser shows photos upright too, so a linked
photo's boxes agree).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import unescape

import httpx

from imm_faces.runtime import oss_process
from imm_faces.runtime.auth.credentials import Credentials, CredentialSource
from imm_faces.runtime.auth.oss_signing import presign_url
from imm_faces.runtime.report.model import Box, Picture
from imm_faces.runtime.rules import EXIF_ORIENTATION_TAG, split_oss_uri, upright_size

if TYPE_CHECKING:
    from PIL.Image import Image

COVER_PX = 112
PHOTO_HEIGHT_PX = 96
PHOTO_MAX_WIDTH_PX = 192
JPEG_QUALITY = 70
COVER_MARGIN = 0.35
"""Space kept around a face in its cover crop, as a fraction of the face's larger side on each side."""
MAX_OBJECT_BYTES = 64 * 1024 * 1024
"""Larger objects are not read (a photo is far smaller; this bounds memory per request)."""
MAX_THUMBNAIL_BYTES = 256 * 1024
"""A thumbnail OSS makes is a few KB; a larger answer is refused (it is not what was asked for)."""


def pillow_available() -> bool:
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


class ObjectReadError(Exception):
    """An object could not be read: ``reason`` is OSS's error code or what went wrong (never a secret)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def oss_endpoint_for(imm_endpoint: str | None) -> str | None:
    """Where objects are read with path-style URLs: a custom IMM endpoint that is not an Alibaba Cloud host
    (the emulator). None means Alibaba Cloud's virtual-hosted OSS endpoints."""
    if not imm_endpoint:
        return None
    host = (urlsplit(imm_endpoint if "://" in imm_endpoint else "https://" + imm_endpoint).hostname or "").lower()
    return None if host.endswith((".aliyuncs.com", ".aliyun.com")) else imm_endpoint.rstrip("/")


class ObjectStore:
    """Presigned URLs for, and reads of, ``oss://`` objects."""

    def __init__(
        self,
        credentials: CredentialSource,
        region: str,
        *,
        endpoint: str | None,
        expires: int,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.credentials = credentials
        self.region = region
        self.endpoint = endpoint
        self.expires = expires
        self.http = http

    def base_url(self, bucket: str, key: str) -> str:
        path = quote(key, safe="/")
        if self.endpoint:
            return f"{self.endpoint}/{bucket}/{path}"
        return f"https://{bucket}.oss-{self.region}.aliyuncs.com/{path}"

    def url(self, uri: str, creds: Credentials | None = None, process: str | None = None) -> str:
        """A presigned GET of the object; with ``process`` (an ``x-oss-process`` value, signed with the rest),
        of the image OSS makes of it."""
        bucket, key = split_oss_uri(uri)
        creds = creds or self.credentials.get()
        query = [(oss_process.PARAMETER, process)] if process else []
        return presign_url(
            self.base_url(bucket, key),
            creds,
            bucket=bucket,
            key=key,
            region=self.region,
            expires=self.expires,
            query=query,
        )

    async def read(self, uri: str, creds: Credentials, process: str | None = None) -> bytes:
        """The object's bytes, or with ``process`` the image OSS makes (at most :data:`MAX_THUMBNAIL_BYTES`:
        anything larger is not the thumbnail asked for). Raises :class:`ObjectReadError`."""
        limit = MAX_THUMBNAIL_BYTES if process else MAX_OBJECT_BYTES
        if self.http is None:
            raise ObjectReadError("no HTTP client")
        try:
            url = self.url(uri, creds, process)
        except ValueError as exc:
            raise ObjectReadError(str(exc)) from None
        try:
            async with self.http.stream("GET", url) as response:
                if response.status_code != 200:
                    body = (await response.aread())[:4096].decode("utf-8", "replace")
                    code, message = (_element(body, name) for name in ("Code", "Message"))
                    reason = f"OSS answered HTTP {response.status_code} {code}".rstrip()
                    raise ObjectReadError(f"{reason}: {message[:200]}" if message else reason)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ObjectReadError(
                            f"OSS answered more than {limit // 1024} KiB"
                            if process
                            else f"larger than {MAX_OBJECT_BYTES // (1024 * 1024)} MiB"
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise ObjectReadError(f"cannot read it ({exc.__class__.__name__})") from None


PHOTO_RESIZE = oss_process.Resize(PHOTO_MAX_WIDTH_PX, PHOTO_HEIGHT_PX, "lfit")
"""A member photo's thumbnail: fit in :data:`PHOTO_MAX_WIDTH_PX` x :data:`PHOTO_HEIGHT_PX`, never enlarged."""
_JPEG = (oss_process.Quality(JPEG_QUALITY), oss_process.Format())
PHOTO_PROCESS = oss_process.write([oss_process.AutoOrient(), PHOTO_RESIZE, *_JPEG])


def cover_process(face: tuple[float, float, float, float], width: int, height: int) -> str:
    """The ``x-oss-process`` that makes a cover: upright, the :func:`cover_crop` square around ``face`` (in the
    upright ``width`` x ``height`` image), :data:`COVER_PX` square."""
    x0, y0, x1, y1 = cover_crop(face, width, height)
    return oss_process.write(
        [
            oss_process.AutoOrient(),
            oss_process.Crop(x0, y0, max(1, x1 - x0), max(1, y1 - y0)),
            oss_process.Resize(COVER_PX, COVER_PX, "fixed", limit=False),
            *_JPEG,
        ]
    )


async def processed_thumbnails(
    store: ObjectStore,
    uri: str,
    creds: Credentials,
    size: tuple[int, int],
    face: tuple[float, float, float, float] | None,
    photo: bool,
) -> Thumbnails:
    """The pictures made by OSS (image processing, ``x-oss-process``) from a photo whose upright size is
    ``size``: only thumbnails travel, and nothing is decoded here. Raises :class:`ObjectReadError`."""
    width, height = size
    out = Thumbnails(width, height)
    if face is not None:
        out.cover = Picture(
            data_uri(await store.read(uri, creds, cover_process(face, width, height))), COVER_PX, COVER_PX
        )
    if photo:
        data = await store.read(uri, creds, PHOTO_PROCESS)
        out.photo = Picture(data_uri(data), *PHOTO_RESIZE.size(width, height))
    return out


def _element(xml: str, name: str) -> str:
    """The text of the first ``<name>`` element of OSS's XML error body ("" when absent), unescaped."""
    start, end = f"<{name}>", f"</{name}>"
    return unescape(xml.split(start, 1)[1].split(end, 1)[0]).strip() if start in xml and end in xml else ""


def data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


@dataclass
class Thumbnails:
    """What one photo gives: its upright size, and the pictures asked for."""

    width: int
    height: int
    cover: Picture | None = None
    photo: Picture | None = None


def cover_crop(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """A square around the face ``box`` (left, top, w, h in upright pixels) with :data:`COVER_MARGIN`, moved
    (and if needed shrunk) to stay inside a ``width`` x ``height`` image: (left, top, right, bottom)."""
    left, top, w, h = box
    side = min(max(w, h) * (1 + 2 * COVER_MARGIN), width, height)
    side = max(side, 1.0)
    cx, cy = left + w / 2, top + h / 2
    x0 = min(max(cx - side / 2, 0.0), width - side)
    y0 = min(max(cy - side / 2, 0.0), height - side)
    return round(x0), round(y0), round(x0 + side), round(y0 + side)


def _encode(img: Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    return out.getvalue()


def make_thumbnails(data: bytes, face: tuple[float, float, float, float] | None, photo: bool) -> Thumbnails:
    """Decode ``data`` once and make the cover crop around ``face`` (upright pixels) and/or the member-photo
    thumbnail. Raises ValueError when it is not an image Pillow reads."""
    from PIL import Image as PILImage
    from PIL import ImageOps, UnidentifiedImageError
    from PIL.Image import DecompressionBombError

    try:
        img: Any = PILImage.open(io.BytesIO(data))
        stored_w, stored_h = img.size
        width, height = upright_size(stored_w, stored_h, img.getexif().get(EXIF_ORIENTATION_TAG, 1))
        # The smallest decode that still gives every picture at full sharpness (JPEG decodes at 1/2..1/8).
        need = 0.0
        if photo:
            need = max(need, min(PHOTO_HEIGHT_PX / height, PHOTO_MAX_WIDTH_PX / width))
        if face is not None:
            need = max(need, COVER_PX / max(1.0, max(face[2], face[3]) * (1 + 2 * COVER_MARGIN)))
        need = min(1.0, need)
        if img.format == "JPEG" and need < 1.0:
            img.draft("RGB", (max(1, round(stored_w * need)), max(1, round(stored_h * need))))
        img = ImageOps.exif_transpose(img) or img
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGBA")
            background = PILImage.new("RGB", img.size, (255, 255, 255))
            background.paste(img, mask=img.getchannel("A"))
            img = background
        scale = img.width / width
        out = Thumbnails(width, height)
        if face is not None:
            x0, y0, x1, y1 = cover_crop(face, width, height)
            crop = img.crop((round(x0 * scale), round(y0 * scale), round(x1 * scale), round(y1 * scale)))
            crop = crop.resize((COVER_PX, COVER_PX), PILImage.Resampling.LANCZOS, reducing_gap=2.0)
            out.cover = Picture(data_uri(_encode(crop)), COVER_PX, COVER_PX)
        if photo:
            thumb = img.copy()
            thumb.thumbnail((PHOTO_MAX_WIDTH_PX, PHOTO_HEIGHT_PX), PILImage.Resampling.LANCZOS, reducing_gap=2.0)
            out.photo = Picture(data_uri(_encode(thumb)), thumb.width, thumb.height)
        return out
    except (UnidentifiedImageError, DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"not an image Pillow can read ({exc.__class__.__name__})") from None


def fraction_box(left: float, top: float, w: float, h: float, width: int, height: int) -> Box:
    """A pixel box -> fractions of the image, clipped to it."""
    x0, y0 = max(0.0, min(left, width)), max(0.0, min(top, height))
    x1, y1 = max(x0, min(left + w, width)), max(y0, min(top + h, height))
    return Box(x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height)


def link_crop(face: tuple[float, float, float, float], width: int, height: int) -> Box:
    """The cover square (as fractions) the browser shows of a linked picture."""
    x0, y0, x1, y1 = cover_crop(face, width, height)
    return Box(x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height)
