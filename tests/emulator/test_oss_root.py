"""Nothing under ``--oss-root`` resolves outside it, for listing (bindings) as for reading (indexing): a bucket,
a folder or an object that links outside is absent to the emulator; links that stay inside are followed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from imm_faces.emulator.oss import NotAnObjectError, OutsideRootError, list_bucket, object_path
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import bindings, datasets, files, projects
from tests.fakes import write_photo

PROJECT = "contain"


@pytest.fixture
def layout(tmp_path: Path, oss_root: Path) -> Path:
    """<oss>/photos/{a.png, in/b.png, secret-link.png -> outside, away -> outside dir, here -> in/, self -> .},
    <oss>/linked -> outside dir, and an outside dir with a photo in it."""
    outside = tmp_path / "outside"
    write_photo(tmp_path, "outside", "private.png", [{"person": 1}])
    write_photo(oss_root, "photos", "a.png", [{"person": 1}])
    write_photo(oss_root, "photos", "in/b.png", [{"person": 2}])
    bucket = oss_root / "photos"
    (bucket / "secret-link.png").symlink_to(outside / "private.png")
    (bucket / "away").symlink_to(outside, target_is_directory=True)
    (bucket / "here").symlink_to(bucket / "in", target_is_directory=True)
    (bucket / "self").symlink_to(bucket, target_is_directory=True)
    (bucket / "dangling.png").symlink_to(tmp_path / "nothing")
    (oss_root / "linked").symlink_to(outside, target_is_directory=True)
    return outside


def test_listing_stays_inside_the_root(oss_root: Path, layout: Path) -> None:
    objects = list_bucket(oss_root, "photos")
    assert objects is not None
    # The real objects, and the folder linked inside the root; nothing from outside, the loop ends.
    photos = sorted(k for k in objects if k.endswith(".png"))
    assert photos == ["a.png", "here/b.png", "in/b.png"]
    assert list_bucket(oss_root, "linked") is None  # a bucket linking outside does not exist
    assert list_bucket(oss_root, "photos", "away/") == {}
    assert list_bucket(oss_root, "photos", "../linked/") == {}
    assert sorted(list_bucket(oss_root, "photos", "in/") or {}) == ["in/b.png", "in/b.png.faces.json"]


@pytest.mark.parametrize(
    "uri",
    [
        "oss://photos/secret-link.png",
        "oss://photos/away/private.png",
        "oss://linked/private.png",
        "oss://photos/../../outside/private.png",
        "oss://photos/self/secret-link.png",
    ],
)
def test_reading_stays_inside_the_root(oss_root: Path, layout: Path, uri: str) -> None:
    with pytest.raises(OutsideRootError if ".." not in uri else NotAnObjectError):  # ".." is no key's name
        object_path(oss_root, uri)


def test_links_inside_the_root_are_read(oss_root: Path, layout: Path) -> None:
    assert object_path(oss_root, "oss://photos/here/b.png") == (oss_root / "photos" / "in" / "b.png").resolve()


def _file_exists(client: ImmClient, dataset: str, uri: str) -> bool:
    try:
        client.call(files.GetFileMeta, project_name=PROJECT, dataset_name=dataset, uri=uri)
    except ImmError as exc:
        assert exc.resource_not_found, exc
        return False
    return True


def _wait(what: str, check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_bindings_and_indexing_never_reach_outside(
    emulator: Emulator, client: ImmClient, oss_root: Path, layout: Path
) -> None:
    client.call(projects.CreateProject, project_name=PROJECT)
    for name in ("inside", "outside"):
        client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=name)
    client.call(bindings.CreateBinding, project_name=PROJECT, dataset_name="inside", uri="oss://photos/")
    client.call(bindings.CreateBinding, project_name=PROJECT, dataset_name="outside", uri="oss://linked/")
    client.call(
        files.IndexFileMeta, project_name=PROJECT, dataset_name="outside", file={"URI": "oss://photos/secret-link.png"}
    )

    def scanned(dataset: str, uri: str) -> bool:
        b = client.call(bindings.GetBinding, project_name=PROJECT, dataset_name=dataset, uri=uri).binding
        return b is not None and b.phase != "FullScanning"

    _wait(
        "the bindings' first scans", lambda: scanned("inside", "oss://photos/") and scanned("outside", "oss://linked/")
    )
    _wait("the real photos indexed", lambda: _file_exists(client, "inside", "oss://photos/in/b.png"))
    assert _file_exists(client, "inside", "oss://photos/a.png")
    assert _file_exists(client, "inside", "oss://photos/here/b.png")  # a link inside the root is followed
    linked = client.call(bindings.GetBinding, project_name=PROJECT, dataset_name="outside", uri="oss://linked/").binding
    assert linked is not None and linked.state == "Failed" and "does not exist" in (linked.reason or "")
    # Index the real photo after the link: jobs run in order, so once it is in, the link's job is done.
    client.call(files.IndexFileMeta, project_name=PROJECT, dataset_name="outside", file={"URI": "oss://photos/a.png"})
    _wait("a photo indexed", lambda: _file_exists(client, "outside", "oss://photos/a.png"))
    for uri in ("oss://photos/secret-link.png", "oss://photos/away/private.png", "oss://linked/private.png"):
        assert not _file_exists(client, "inside", uri), uri
        assert not _file_exists(client, "outside", uri), uri
    assert (layout / "private.png").exists()  # it was there to be found
