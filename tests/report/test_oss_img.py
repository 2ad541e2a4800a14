"""OSS image processing (``x-oss-process``): the report's thumbnails are made by OSS, and by the emulator as OSS
makes them (upright, cropped, resized, JPEG), signed like the rest of the GET."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from imm_faces.emulator.server import Emulator
from imm_faces.runtime import oss_process
from imm_faces.runtime.oss_signing import presign_url
from imm_faces.runtime.report.images import COVER_PX, PHOTO_HEIGHT_PX, PHOTO_PROCESS, cover_crop, cover_process
from tests.conftest import CREDS

UPRIGHT = (1600, 1200)
FACE = (900, 300, 240, 260)  # left, top, width, height in the upright photo
FACE_COLOUR = (230, 180, 140)


def photo(orientation: int = 6) -> bytes:
    """A JPEG whose upright view has a face-coloured ellipse at FACE, stored turned a quarter (Orientation 6)."""
    img = Image.new("RGB", UPRIGHT, (40, 90, 160))
    left, top, w, h = FACE
    ImageDraw.Draw(img).ellipse((left, top, left + w, top + h), fill=FACE_COLOUR)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = img.transpose(Image.Transpose.ROTATE_90) if orientation == 6 else img
    out = io.BytesIO()
    stored.save(out, format="JPEG", quality=92, exif=exif)
    return out.getvalue()


@pytest.fixture
def objects(oss_root: Path) -> Path:
    folder = oss_root / "photos"
    folder.mkdir()
    (folder / "turned.jpg").write_bytes(photo())
    (folder / "note.txt").write_bytes(b"not an image")
    return folder


def get(emulator: Emulator, key: str, process: str | None, **kw: object) -> httpx.Response:
    query = [(oss_process.PARAMETER, process)] if process is not None else []
    url = presign_url(f"{emulator.endpoint}/photos/{key}", CREDS, bucket="photos", key=key, region="cn-hangzhou",
                      expires=60, query=query)  # fmt: skip
    return httpx.get(url, trust_env=False, **kw)  # type: ignore[arg-type]


def test_the_reports_processes_read_back_as_written() -> None:
    steps = oss_process.read(cover_process((900.0, 300.0, 240.0, 260.0), *UPRIGHT))
    x0, y0, x1, y1 = cover_crop((900, 300, 240, 260), *UPRIGHT)
    assert steps == [oss_process.AutoOrient(True), oss_process.Crop(x0, y0, x1 - x0, y1 - y0),
                     oss_process.Resize(COVER_PX, COVER_PX, "fixed", limit=False), oss_process.Quality(70),
                     oss_process.Format()]  # fmt: skip
    assert oss_process.write(oss_process.read(PHOTO_PROCESS)) == PHOTO_PROCESS
    assert PHOTO_PROCESS == "image/auto-orient,1/resize,m_lfit,w_192,h_96/quality,q_70/format,jpg"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("video/snapshot,t_1", "image/"), ("image/", "image/"), ("image/rotate,90", "'rotate'"),
        ("image/resize,m_pad,w_1,h_1", "m must be lfit or fixed"),
        ("image/resize,w_0,h_5", "w must be a whole number 1-16384"),
        ("image/resize,w_10", "w and h are both required"), ("image/crop,x_1,w_5", "w and h are required"),
        ("image/crop,w_5,h_5,z_1", "'z_1' is not one of its parameters"),
        ("image/quality,q_101", "q must be a whole number 1-100"),
        ("image/format,png", "only jpg"), ("image/auto-orient,2", "0 or 1"), ("image/resize,w_5,h_5,w_6", "'w_6'"),
    ],
)  # fmt: skip
def test_processes_not_read_here_are_refused_naming_the_rule(value: str, named: str) -> None:
    with pytest.raises(oss_process.ProcessError, match=named.replace("(", r"\(")) as caught:
        oss_process.read(value)
    assert named in str(caught.value)


@pytest.mark.parametrize(("mode", "limit", "source", "want"), [
    ("lfit", True, (1600, 1200), (128, 96)), ("lfit", True, (100, 50), (100, 50)),
    ("lfit", False, (100, 50), (192, 96)), ("fixed", False, (50, 50), (192, 96)),
    ("fixed", True, (50, 50), (50, 50)), ("fixed", True, (400, 400), (192, 96)),
])  # fmt: skip
def test_resize_sizes(mode: str, limit: bool, source: tuple[int, int], want: tuple[int, int]) -> None:
    resize = oss_process.Resize(192, 96, "fixed" if mode == "fixed" else "lfit", limit)
    assert resize.size(*source) == want


def test_the_emulator_makes_the_cover_from_the_upright_photo(emulator: Emulator, objects: Path) -> None:
    got = get(emulator, "turned.jpg", cover_process(tuple(float(v) for v in FACE), *UPRIGHT))  # type: ignore[arg-type]
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    cover = Image.open(io.BytesIO(got.content))
    assert cover.format == "JPEG" and cover.size == (COVER_PX, COVER_PX)
    centre = cover.convert("RGB").getpixel((COVER_PX // 2, COVER_PX // 2))
    assert isinstance(centre, tuple)
    assert all(abs(a - b) <= 25 for a, b in zip(centre, FACE_COLOUR, strict=True)), centre  # upright: on the face
    assert len(got.content) < 10_000  # a thumbnail travels, not the photo


def test_the_emulator_thumbnail_matches_a_full_decode(emulator: Emulator, objects: Path) -> None:
    """Decoding the JPEG small (draft) gives what a full decode, turn and resize give."""
    got = get(emulator, "turned.jpg", PHOTO_PROCESS)
    thumb = Image.open(io.BytesIO(got.content)).convert("RGB")
    assert thumb.size == (128, PHOTO_HEIGHT_PX)  # upright 4:3 in 192 x 96
    full = Image.open(io.BytesIO(photo()))
    reference = full.transpose(Image.Transpose.ROTATE_270).resize(thumb.size, Image.Resampling.LANCZOS)
    diff = ImageStat.Stat(ImageChops.difference(thumb, reference.convert("RGB"))).mean
    assert max(diff) < 6, diff


def test_a_process_is_signed_and_checked(emulator: Emulator, objects: Path) -> None:
    query = [(oss_process.PARAMETER, PHOTO_PROCESS)]
    url = presign_url(f"{emulator.endpoint}/photos/turned.jpg", CREDS, bucket="photos", key="turned.jpg",
                      region="cn-hangzhou", expires=60, query=query)  # fmt: skip
    tampered = url.replace("w_192", "w_1920")
    assert "w_1920" in tampered
    refused = httpx.get(tampered, trust_env=False)
    assert refused.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in refused.text


@pytest.mark.parametrize(("key", "process", "message"), [
    ("turned.jpg", "image/rotate,90", "rotate"),
    # without auto-orient the crop is of the image as stored (turned a quarter)
    ("turned.jpg", "image/crop,x_5000,y_0,w_10,h_10", "crop: the start (5000, 0) is outside the 1200 x 1600 image"),
    ("note.txt", PHOTO_PROCESS, "not an image OSS can process"),
])  # fmt: skip
def test_what_cannot_be_processed_is_osss_invalid_argument(
    emulator: Emulator, objects: Path, key: str, process: str, message: str
) -> None:
    got = get(emulator, key, process)
    assert got.status_code == 400 and got.headers["content-type"] == "application/xml"
    assert "<Code>InvalidArgument</Code>" in got.text and message in got.text


def test_an_answer_too_large_for_a_thumbnail_is_refused() -> None:
    """An endpoint that ignores x-oss-process and sends the photo must not put megabytes into the page."""
    import asyncio

    from imm_faces.runtime.report.images import MAX_THUMBNAIL_BYTES, ObjectReadError, ObjectStore

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"\xff" * (MAX_THUMBNAIL_BYTES + 1))

    async def read(process: str | None) -> bytes:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            store = ObjectStore(CREDS, "cn-hangzhou", endpoint="http://oss.test", expires=60, http=http)
            return await store.read("oss://photos/big.jpg", CREDS, process)

    with pytest.raises(ObjectReadError, match=f"more than {MAX_THUMBNAIL_BYTES // 1024} KiB"):
        asyncio.run(read(PHOTO_PROCESS))
    assert len(asyncio.run(read(None))) == MAX_THUMBNAIL_BYTES + 1  # the object itself may be larger


def test_the_emulator_decodes_a_photo_once_for_its_thumbnails_until_it_changes() -> None:
    from imm_faces.emulator import oss_img

    cache = oss_img.DecodedSources()
    steps = oss_process.read(PHOTO_PROCESS)
    first = oss_img.process(photo(), steps, source=("turned.jpg", 1, 1), cache=cache)
    red = io.BytesIO()
    Image.new("RGB", (UPRIGHT[1], UPRIGHT[0]), (200, 0, 0)).save(red, format="JPEG")  # as stored, other pixels
    # the same identity (path, size, time): the decoded source is reused, whatever the bytes say
    assert oss_img.process(red.getvalue(), steps, source=("turned.jpg", 1, 1), cache=cache) == first
    changed = oss_img.process(red.getvalue(), steps, source=("turned.jpg", 1, 2), cache=cache)  # modified
    assert changed != first and changed == oss_img.process(red.getvalue(), steps)  # decoded anew, as uncached


def test_oss_limits_on_sources_and_results() -> None:
    """OSS refuses a source over 20 MB or 30,000 pixels a side, and a result over 4,096 x 4,096 pixels (a
    thumbnail request cannot make the emulator allocate gigabytes)."""
    from imm_faces.emulator import oss_img
    from imm_faces.runtime.rules import IMG_MAX_SOURCE_BYTES

    steps = oss_process.read(PHOTO_PROCESS)
    with pytest.raises(oss_process.ProcessError, match="larger than 20 MB"):
        oss_img.process(bytes(IMG_MAX_SOURCE_BYTES + 1), steps)
    wide = io.BytesIO()
    Image.new("L", (30_001, 1)).save(wide, format="PNG")
    with pytest.raises(oss_process.ProcessError, match="30000 pixels a side"):
        oss_img.process(wide.getvalue(), steps)
    huge = oss_process.read("image/resize,m_fixed,w_4097,h_4096,limit_0")
    with pytest.raises(oss_process.ProcessError, match="4097 x 4096 is over OSS's 16777216 pixels"):
        oss_img.process(photo(), huge)
    assert Image.open(
        io.BytesIO(oss_img.process(photo(), oss_process.read("image/resize,m_fixed,w_64,h_48")))
    ).size == (64, 48)


def test_the_decoded_sources_stay_within_their_pixel_bound() -> None:
    from imm_faces.emulator import oss_img

    cache = oss_img.DecodedSources()
    cache.MAX_PIXELS = 250  # type: ignore[misc]
    for n in range(4):
        cache.put(("k", n), Image.new("L", (10, 10)))  # 100 pixels each: two fit
    assert cache.get(("k", 0)) is None and cache.get(("k", 1)) is None
    assert cache.get(("k", 2)) is not None and cache.get(("k", 3)) is not None
