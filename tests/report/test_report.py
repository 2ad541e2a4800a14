"""``imm-faces verify --html``: the page, its pictures (read from the emulator through signed OSS GETs), and the
page in a real browser (headless Chromium; skipped, saying why, when none is installed)."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from imm_faces.emulator.server import Emulator
from imm_faces.emulator.store import ClusterKey
from imm_faces.runtime.cli.main import main
from imm_faces.runtime.report.images import PHOTO_HEIGHT_PX, cover_crop
from tests.conftest import CREDS, STS_KEY
from tests.helpers import DATASET, PROJECT, outputs_file
from tests.report.browser import Browser, find_chromium
from tests.report.conftest import FACE_COLOURS, ROTATED, SIZE, Drawn, face_box


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", CREDS.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CREDS.access_key_secret)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def tamper_cluster(drawn: Drawn, object_id: str, **changes: object) -> None:
    with drawn.emulator.store.tx() as tx:
        doc = tx.get(ClusterKey(PROJECT, DATASET, object_id))
        assert doc is not None
        doc.update(changes)
        tx.put(ClusterKey(PROJECT, DATASET, object_id), doc)


def verify_html(drawn: Drawn, page: Path, *extra: str) -> int:
    return main(["verify", "--outputs", str(drawn.outputs), "--quiet", "--sample", "all", "--html", str(page), *extra])


def card_html(page: str, object_id: str) -> str:
    start = page.rindex("<article", 0, page.index(f'data-id="{object_id}"'))
    end = page.find("<article", start + 1)
    return page[start : end if end > 0 else len(page)]


def picture(src: str) -> Image.Image:
    assert src.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")


def near(pixel: object, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


def test_page_shows_every_cluster_its_checks_and_faces(drawn: Drawn, tmp_path: Path) -> None:
    tamper_cluster(drawn, drawn.bob, FaceCount=5, ImageCount=5)  # the files say 3: consistency fails for Bob
    page_path = tmp_path / "report.html"
    assert verify_html(drawn, page_path) == 1  # verify's own verdict is unchanged by --html
    page = page_path.read_text()
    assert page.count('<article class="card') == 2 and 'data-count="2"' in page
    bob, alice = card_html(page, drawn.bob), card_html(page, drawn.alice)
    assert 'class="card fail"' in bob and "consistency.face_count" in bob and "✗ Failed 2 checks" in bob
    assert 'class="card pass"' in alice and "Every check passed" in alice
    assert page.index(drawn.bob) < page.index(drawn.alice)  # failed clusters first
    # Name and CustomId as set, escaped; FaceCount, ImageCount, gender, ages.
    assert "Alice &lt;b&gt;&amp;" in alice and "<b>&" not in alice and "emp-0042" in alice
    assert "Faces <b>4</b>" in alice and "Images <b>4</b>" in alice and "female" in alice and "30–34" in alice
    assert "Faces <b>5</b>" in bob and "male" in bob
    # Every image has alt text; the strip marks this cluster's faces only (both.png: one box in each card).
    images = re.findall(r"<img ([^>]*)>", page)
    assert images and all(re.search(r'alt="[^"]{8,}"', i) for i in images)
    both = [m for m in re.findall(r"<li>.*?</li>", alice) if "both.png" in m]
    assert len(both) == 1 and both[0].count('class="box"') == 1
    # The summary: counts and the size histogram (two clusters of 3-4 faces once Bob says 5: one and one).
    assert (
        re.search(r"<b>2</b>found", page) and re.search(r"<b>1</b>passed", page) and re.search(r"<b>1</b>failed", page)
    )
    assert re.search(r'<th scope="row">3-4</th>.*?<td class="n">1</td>', page)
    assert re.search(r'<th scope="row">5-9</th>.*?<td class="n">1</td>', page)
    # Self-contained: pictures are data: URIs, the policy allows nothing else, no secret anywhere.
    assert "img-src data:;" in page and "http://127.0.0.1" not in page.split("<body>", 1)[1].split("<main", 1)[1]
    assert CREDS.access_key_secret not in page and "x-oss-signature" not in page
    # One inline script, allowed by its hash alone (no 'unsafe-inline' for scripts).
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    (policy,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert f"script-src 'sha256-{digest}';" in html.unescape(policy)


def test_the_cover_is_cut_from_the_upright_photo(drawn: Drawn, tmp_path: Path) -> None:
    """Bob's best face is on a photo stored turned a quarter (EXIF Orientation 6): the cover crop and the box on
    its thumbnail must land on the face, which they miss if the orientation is ignored."""
    page_path = tmp_path / "report.html"
    assert verify_html(drawn, page_path) == 0
    bob = card_html(page_path.read_text(), drawn.bob)
    cover_src = re.search(r'<div class="cover"><img src="([^"]+)" alt="Cover face of', bob)
    assert cover_src, bob[:500]
    cover = picture(cover_src.group(1))
    left, top, w, h = face_box(0)
    x0, y0, x1, _y1 = cover_crop((left, top, w, h), *SIZE)
    scale = cover.width / (x1 - x0)
    centre = (round((left + w / 2 - x0) * scale), round((top + h / 2 - y0 + 20) * scale))  # the cheek, not an eye
    assert near(cover.getpixel(centre), FACE_COLOURS[2]), cover.getpixel(centre)
    thumb_html = next(m for m in re.findall(r"<li>.*?</li>", bob) if ROTATED in m)
    thumb = picture(re.search(r'src="([^"]+)"', thumb_html).group(1))  # type: ignore[union-attr]
    assert thumb.height == PHOTO_HEIGHT_PX and thumb.width > thumb.height  # upright: wider than high
    box = re.search(r"left:([\d.]+)%;top:([\d.]+)%;width:([\d.]+)%;height:([\d.]+)%", thumb_html)
    assert box
    bl, bt, bw, bh = (float(v) / 100 for v in box.groups())
    cheek = (round((bl + bw / 2) * thumb.width), round((bt + bh * 0.7) * thumb.height))
    assert near(thumb.getpixel(cheek), FACE_COLOURS[2]), thumb.getpixel(cheek)


def test_links_are_presigned_and_expire_as_stated(drawn: Drawn, tmp_path: Path) -> None:
    page_path = tmp_path / "links.html"
    assert verify_html(drawn, page_path, "--links", "--link-expiry", "600") == 0
    page = page_path.read_text()
    srcs = [s.replace("&amp;", "&") for s in re.findall(r'<img src="([^"]+)"', page)]
    assert srcs and all(s.startswith(drawn.emulator.endpoint + "/photos/") for s in srcs)
    assert all("x-oss-expires=600" in s and "x-oss-signature=" in s for s in srcs)
    assert f"img-src data: {drawn.emulator.endpoint}" in page and "valid until" in page
    for src in set(srcs):
        got = httpx.get(src, trust_env=False)
        assert got.status_code == 200 and Image.open(io.BytesIO(got.content)).width > 0
        unsigned = httpx.get(src.split("?", 1)[0], trust_env=False)
        assert unsigned.status_code == 404  # the objects are not public


def test_temporary_credentials_never_go_into_links(
    drawn: Drawn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", STS_KEY.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", STS_KEY.access_key_secret)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS_KEY.security_token or "")
    page_path = tmp_path / "sts.html"
    assert verify_html(drawn, page_path, "--links") == 2
    err = capsys.readouterr().err
    assert "temporary (STS)" in err and "--embed" in err and not page_path.exists()
    assert verify_html(drawn, page_path) == 0  # embedded thumbnails: the token stays out of the page
    assert STS_KEY.security_token and STS_KEY.security_token not in page_path.read_text()


def test_a_photo_that_cannot_be_read_is_named_not_fatal(drawn: Drawn, oss_root: Path, tmp_path: Path) -> None:
    (oss_root / "photos" / "alice-3.png").write_bytes(b"not an image any more")
    (oss_root / "photos" / "bob-1.png").unlink()
    page_path = tmp_path / "report.html"
    verify_html(drawn, page_path, "--no-consistency")
    page = page_path.read_text()
    assert "not an image Pillow can read" in card_html(page, drawn.alice)
    assert "NoSuchKey" in card_html(page, drawn.bob)
    assert page.count('<article class="card') == 2


def test_browser_loads_the_page_decodes_every_thumbnail_and_keys_move(
    drawn: Drawn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium to run the page in: install it (Debian: apt-get install -y chromium)")
    tamper_cluster(drawn, drawn.bob, FaceCount=5, ImageCount=5)
    page_path = tmp_path / "report.html"
    assert verify_html(drawn, page_path, "--json") == 1
    checked = json.loads(capsys.readouterr().out)["checked_clusters"]
    with Browser(chromium) as browser:
        browser.open(page_path.as_uri())
        decoded = browser.evaluate(
            "Promise.all([...document.images].map(i => i.decode().then(() => [i.naturalWidth, i.alt],"
            " () => [0, i.alt])))"
        )
        assert decoded and all(width > 0 and alt for width, alt in decoded), decoded
        counts = browser.evaluate(
            "[document.querySelectorAll('article.card').length, +document.getElementById('clusters').dataset.count,"
            " document.querySelectorAll('article.card.fail').length]"
        )
        assert counts == [checked, checked, 1] and checked == 2
        # Nothing but the page itself and its data: pictures was requested.
        assert all(u.startswith(("file:", "data:")) for u in browser.requested_urls()), browser.requested_urls()
        active = "document.activeElement && document.activeElement.id"
        browser.key("j", "KeyJ", 74)
        assert browser.evaluate(active) == "c0"
        browser.key("ArrowDown", "ArrowDown", 40)
        assert browser.evaluate(active) == "c1"
        browser.key("k", "KeyK", 75)
        assert browser.evaluate(active) == "c0"
        shot = browser.screenshot(tmp_path / "report.png")
        browser.key("f", "KeyF", 70)  # failed only
        visible = "[...document.querySelectorAll('article.card')].filter(c => c.offsetParent !== null).length"
        assert browser.evaluate(visible) == 1
        browser.key("Escape", "Escape", 27)
        assert browser.evaluate(visible) == 2
        # The page's own script ran (the keys above); a script or handler planted by an escaping slip does not.
        planted = page_path.with_name("planted.html")
        slip = (
            '<script>document.body.dataset.planted="script"</script>'
            '<img alt="x" src="data:," onerror="document.body.dataset.handler=\'ran\'">'
        )
        planted.write_text(page_path.read_text().replace("</main>", slip + "</main>", 1))
        browser.open(planted.as_uri())
        assert browser.evaluate("[document.body.dataset.planted, document.body.dataset.handler]") == [None, None]
        browser.key("j", "KeyJ", 74)
        assert browser.evaluate(active) == "c0"  # its own script still runs
    with capsys.disabled():
        print(f"\nscreenshot of the report: {shot}")
    with Image.open(shot) as img:
        assert img.width == 1280 and img.height > 600


def test_without_pillow_oss_makes_every_thumbnail_and_a_photo_it_cannot_says_what_to_install(
    drawn: Drawn, oss_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("imm_faces.runtime.report.images.pillow_available", lambda: False)

    def no_local_decoding(*_: object) -> None:
        raise AssertionError("a thumbnail was made here, not by OSS")

    monkeypatch.setattr("imm_faces.runtime.report.images.make_thumbnails", no_local_decoding)
    page_path = tmp_path / "report.html"
    assert verify_html(drawn, page_path, "--embed") == 0
    page = page_path.read_text()
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) >= 9 and all(src.startswith("data:image/jpeg;base64,") for src in srcs)
    assert "x-oss-signature" not in page
    (oss_root / "photos" / "alice-3.png").write_bytes(b"not an image any more")
    assert verify_html(drawn, page_path, "--no-consistency") == 0
    alice = card_html(page_path.read_text(), drawn.alice)
    assert "not an image OSS can process" in alice and "pip install &#x27;imm-faces[report]&#x27;" in alice


def test_the_runtime_modules_import_without_pillow() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['PIL'] = None\n"  # any import of Pillow fails
        "from imm_faces.runtime.report import cli, collect, html, images\n"
        "from imm_faces.runtime.cli.main import build_parser\n"
        "build_parser().parse_args(['verify', '--html', 'x.html', '--links'])\n"
        "print(images.pillow_available())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_a_deployment_without_clusters_still_gets_its_page(emulator: Emulator, tmp_path: Path) -> None:
    """The page is written whatever verify found: here the dataset is missing, every cluster check skipped."""
    outputs = outputs_file(tmp_path, emulator.endpoint, None)
    page_path = tmp_path / "empty.html"
    assert main(["verify", "--outputs", str(outputs), "--quiet", "--html", str(page_path)]) == 1
    page = page_path.read_text()
    assert "No figure cluster was checked" in page and 'data-count="0"' in page and "FAILED" in page
    assert re.search(r'<tr class="failed"><td>failed</td><td><code>project.exists</code>', page)


def test_a_page_that_cannot_be_written_comes_after_verifys_own_report(
    drawn: Drawn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no-such-dir" / "report.html"
    assert verify_html(drawn, target, "--json") == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["passed"] is True  # verify's report is printed all the same
    assert f"--html {target}: No such file or directory" in err and not target.exists()


@pytest.mark.parametrize("batch_fails", [False, True])
def test_cards_read_their_clusters_in_batches_and_alone_when_a_batch_fails(
    drawn: Drawn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_fails: bool
) -> None:
    from imm_faces.runtime import client as client_module
    from imm_faces.runtime.errors import ImmError
    from imm_faces.runtime.report import collect, write

    calls: list[str] = []  # the report's IMM calls (verify's come before collect starts)
    real_call, real_collect = client_module.AsyncImmClient.call, collect.collect

    async def counted(self: client_module.AsyncImmClient, op: Any, *args: Any, **params: Any) -> Any:
        if "report" in calls:
            calls.append(op.name)
            if batch_fails and op.name == "BatchGetFigureCluster":
                raise ImmError("InternalError", "try later", status=500)
        return await real_call(self, op, *args, **params)

    async def marked(*args: Any, **kwargs: Any) -> Any:
        calls.append("report")
        return await real_collect(*args, **kwargs)

    monkeypatch.setattr(client_module.AsyncImmClient, "call", counted)
    monkeypatch.setattr(write, "collect", marked)
    monkeypatch.setattr(collect, "BATCH_GET_MAX_IDS", 1)  # a batch a cluster
    page_path = tmp_path / "report.html"
    assert verify_html(drawn, page_path, "--no-consistency") == 0
    page = page_path.read_text()
    for object_id in (drawn.alice, drawn.bob):
        assert '<div class="cover"><img src="data:image/jpeg' in card_html(page, object_id)
    assert calls.count("BatchGetFigureCluster") == 2 and calls.count("SimpleQuery") == 2
    assert calls.count("GetFigureCluster") == (2 if batch_fails else 0)
