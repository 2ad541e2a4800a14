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
from imm_faces.runtime.auth.oss_signing import presign_url
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
    url = presign_url(
        f"{emulator.endpoint}/photos/{key}",
        CREDS,
        bucket="photos",
        key=key,
        region="cn-hangzhou",
        expires=60,
        query=query,
    )
    return httpx.get(url, trust_env=False, **kw)  # type: ignore[arg-type]


def test_the_reports_processes_read_back_as_written() -> None:
    steps = oss_process.read(cover_process((900.0, 300.0, 240.0, 260.0), *UPRIGHT))
    x0, y0, x1, y1 = cover_crop((900, 300, 240, 260), *UPRIGHT)
    assert steps == [
        oss_process.AutoOrient(True),
        oss_process.Crop(x0, y0, x1 - x0, y1 - y0),
        oss_process.Resize(COVER_PX, COVER_PX, "fixed", limit=False),
        oss_process.Quality(70),
        oss_process.Format(),
    ]
    assert oss_process.write(oss_process.read(PHOTO_PROCESS)) == PHOTO_PROCESS
    assert PHOTO_PROCESS == "image/auto-orient,1/resize,m_lfit,w_192,h_96/quality,q_70/format,jpg"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("video/snapshot,t_1", "image/"),
        ("image/", "image/"),
        ("image/rotate,90", "'rotate'"),
        ("image/resize,m_pad,w_1,h_1", "m must be lfit or fixed"),
        ("image/resize,w_0,h_5", "w must be a whole number 1-16384"),
        ("image/resize,w_10", "w and h are both required"),
        ("image/crop,x_1,w_5", "w and h are required"),
        ("image/crop,w_5,h_5,z_1", "'z_1' is not one of its parameters"),
        ("image/quality,q_101", "q must be a whole number 1-100"),
        ("image/format,png", "only jpg"),
        ("image/auto-orient,2", "0 or 1"),
        ("image/resize,w_5,h_5,w_6", "'w_6'"),
    ],
)
def test_processes_not_read_here_are_refused_naming_the_rule(value: str, named: str) -> None:
    with pytest.raises(oss_process.ProcessError, match=named.replace("(", r"\(")) as caught:
        oss_process.read(value)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("mode", "limit", "source", "want"),
    [
        ("lfit", True, (1600, 1200), (128, 96)),
        ("lfit", True, (100, 50), (100, 50)),
        ("lfit", False, (100, 50), (192, 96)),
        ("fixed", False, (50, 50), (192, 96)),
        ("fixed", True, (50, 50), (50, 50)),
        ("fixed", True, (400, 400), (192, 96)),
    ],
)
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
    url = presign_url(
        f"{emulator.endpoint}/photos/turned.jpg",
        CREDS,
        bucket="photos",
        key="turned.jpg",
        region="cn-hangzhou",
        expires=60,
        query=query,
    )
    tampered = url.replace("w_192", "w_1920")
    assert "w_1920" in tampered
    refused = httpx.get(tampered, trust_env=False)
    assert refused.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in refused.text


@pytest.mark.parametrize(
    ("key", "process", "message"),
    [
        ("turned.jpg", "image/rotate,90", "rotate"),
        # without auto-orient the crop is of the image as stored (turned a quarter)
        ("turned.jpg", "image/crop,x_5000,y_0,w_10,h_10", "crop: the start (5000, 0) is outside the 1200 x 1600 image"),
        ("note.txt", PHOTO_PROCESS, "not an image OSS can process"),
    ],
)
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


def png(width: int, height: int, mode: str = "L") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, format="PNG")
    return out.getvalue()


def gif_header(width: int, height: int, frames: int) -> bytes:
    """A GIF declaring ``frames`` frames of ``width`` x ``height`` (each with a one-code image: enough for a header
    to be read and its frames counted, nothing for a decoder)."""
    import struct

    frame = (
        b"\x21\xf9\x04\x00\x00\x00\x00\x00"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x4c\x01\x00"
    )
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return head + loop + frame * frames + b"\x3b"


@pytest.mark.parametrize(
    ("process", "size"),
    [
        ("image/resize,m_fixed,w_4096,h_4096,limit_0", (4096, 4096)),  # exactly OSS's 4,096 x 4,096: allowed
        ("image/resize,m_fixed,w_4097,h_4096,limit_0", None),
        ("image/resize,m_fixed,w_4096,h_4097,limit_0", None),
        ("image/resize,m_lfit,w_8192,h_4096,limit_0", None),  # lfit: 5461 x 4096
    ],
)
def test_the_resize_result_limit_at_its_edge(process: str, size: tuple[int, int] | None) -> None:
    from imm_faces.emulator import oss_img

    steps = oss_process.read(process)
    if size is None:
        with pytest.raises(oss_process.ProcessError, match="is over OSS's 16777216 pixels"):
            oss_img.process(photo(orientation=1), steps)
    else:
        assert Image.open(io.BytesIO(oss_img.process(photo(orientation=1), steps))).size == size


@pytest.mark.parametrize(
    ("source", "process", "size"),
    [
        ((4096, 4096), "image/quality,q_70", (4096, 4096)),
        ((4097, 4096), "image/quality,q_70", None),  # no resize: the result is the source, over the limit
        ((4097, 4096), "image/auto-orient,1/format,jpg", None),
        ((4097, 4096), "image/crop,x_0,y_0,w_4096,h_4096", (4096, 4096)),
        ((4097, 4096), "image/crop,x_0,y_0,w_4097,h_4096", None),
        ((4097, 4096), "image/crop,x_1,y_0,w_4097,h_4096", (4096, 4096)),  # cut at the edge: 4096 wide
    ],
)
def test_every_process_string_has_the_result_limit(
    source: tuple[int, int], process: str, size: tuple[int, int] | None
) -> None:
    from imm_faces.emulator import oss_img

    steps = oss_process.read(process)
    if size is None:
        with pytest.raises(oss_process.ProcessError, match=f"{source[0]} x {source[1]} is over OSS's"):
            oss_img.process(png(*source), steps)
    else:
        assert Image.open(io.BytesIO(oss_img.process(png(*source), steps))).size == size


# Pillow warns over 89,478,485 pixels (half its own refusal limit); OSS allows 250 million, the emulator too.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_the_source_limits_at_their_edges() -> None:
    """20 MB, 30,000 pixels a side and 250 million pixels (frames counted) are allowed; one more is not."""
    from imm_faces.emulator import images, oss_img
    from imm_faces.runtime.rules import IMG_MAX_SOURCE_BYTES

    steps = oss_process.read("image/resize,m_fixed,w_16,h_16,limit_0")
    jpeg = photo(orientation=1)
    padded = jpeg + bytes(IMG_MAX_SOURCE_BYTES - len(jpeg))  # trailing bytes after the JPEG's end
    assert Image.open(io.BytesIO(oss_img.process(padded, steps))).size == (16, 16)
    with pytest.raises(oss_process.ProcessError, match="larger than 20 MB"):
        oss_img.process(padded + b"\0", steps)
    assert Image.open(io.BytesIO(oss_img.process(png(30_000, 1), steps))).size == (16, 16)
    with pytest.raises(oss_process.ProcessError, match="30000 pixels a side"):
        oss_img.process(png(30_001, 1), steps)
    assert images.open_source(gif_header(12_500, 10_000, 2)).width == 12_500  # 250,000,000 pixels: allowed
    with pytest.raises(images.ImageLimitError, match="250000000 pixels"):
        images.open_source(gif_header(12_500, 10_001, 2))
    with pytest.raises(images.ImageLimitError, match="250000000 pixels"):
        images.open_source(gif_header(5_000, 5_000, 11))  # 275 million with its frames


def test_the_decode_budget_at_its_edge() -> None:
    from imm_faces.emulator.images import DecodeBudget, ImageLimitError

    budget = DecodeBudget(1000, wait=0.05)
    with budget.hold(1000), pytest.raises(ImageLimitError, match="other images"), budget.hold(1):
        pass  # full: a second waits, then is refused
    with pytest.raises(ImageLimitError, match="at most 0 MiB"), budget.hold(1001):
        pass
    assert budget.used == 0 and budget.peak == 1000


def test_what_is_refused_is_refused_before_any_pixel_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the result limit, over the decode budget, over the source limits: refused from the header (a PNG's
    EXIF included: Pillow's own getexif decodes the whole PNG to look for it)."""
    from PIL import ImageFile

    from imm_faces.emulator import oss_img
    from imm_faces.emulator.analysis import image_metadata
    from imm_faces.emulator.images import DecodeBudget

    def decoded(self: object) -> None:
        raise AssertionError("pixels were decoded")

    big = png(6000, 6000, "RGB")
    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)
    assert image_metadata(big, "big.png").width == 6000
    with pytest.raises(oss_process.ProcessError, match="6000 x 6000 is over OSS's"):
        oss_img.process(big, oss_process.read("image/quality,q_70"))
    with pytest.raises(oss_process.ProcessError, match="the emulator decodes at most 100 MiB"):
        oss_img.process(big, oss_process.read(PHOTO_PROCESS), budget=DecodeBudget(100 * 2**20))
    with pytest.raises(oss_process.ProcessError, match="30000 pixels a side"):
        oss_img.process(png(30_001, 1), oss_process.read(PHOTO_PROCESS))


def test_a_large_png_thumbnail_is_decoded_within_the_budget() -> None:
    """A 6,000 x 6,000 RGB PNG (144 MB decoded) made into a thumbnail: the budget held exactly its decode, its
    reduced copy and the result, and nothing is left held."""
    from imm_faces.emulator import oss_img
    from imm_faces.emulator.images import DecodeBudget

    budget = DecodeBudget(200 * 2**20)
    out = oss_img.process(png(6000, 6000, "RGB"), oss_process.read(PHOTO_PROCESS), budget=budget)
    assert Image.open(io.BytesIO(out)).size == (96, 96)
    assert 6000 * 6000 * 4 <= budget.peak < 6000 * 6000 * 4 * 1.01 and budget.used == 0
