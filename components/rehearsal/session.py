"""What a rehearsal does the same on either engine: its progress lines, the emulator it uses, the photos it
stages, verify on the outputs, what is left behind and the verdict. :mod:`imm_faces.components.rehearse` (the
command) and the two runners, :mod:`.on_mocks` and :mod:`.real_engine`, build on it; it imports neither."""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import io
import json
import os
import runpy
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY, KEYS_ENV
from imm_faces.emulator.sample_photos import SamplePhotosError, write_sample_bucket
from imm_faces.runtime.auth.credentials import Credentials
from imm_faces.runtime.cli.main import EXIT_FAILED, EXIT_OK
from imm_faces.runtime.cli.main import main as imm_faces
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.errors import ImmError, ImmFacesError, TransportError
from imm_faces.runtime.operations import datasets, projects
from imm_faces.runtime.rules import FACE_GROUP_MIN_GOOD_FACES, split_oss_uri

DYNAMIC_PREFIX = "pulumi-python:dynamic"
IMM_TYPE_PREFIX = f"{DYNAMIC_PREFIX}/imm:"


@dataclass
class Created:
    """One resource the rehearsal registered (or the engine's state holds), in order."""

    type: str
    name: str
    urn: str
    id: str
    outputs: dict[str, Any]
    dynamic: bool
    inputs: dict[str, Any] = field(default_factory=dict)


CREDENTIAL_VARIABLES = ("ALIBABA_CLOUD_", "ALICLOUD_", "ALIYUN_")
"""Prefixes of the environment variables that carry a user's Alibaba Cloud identity (never sent here)."""


class UsageError(Exception):
    """A bad combination of arguments (exit 2)."""


class Progress:
    """Step lines: on stdout, or on stderr with --json (stdout then carries only the JSON summary). A line is
    one write (``print`` writes the text and its newline apart): lines said from the SDK's threads at once stay
    whole."""

    stream: TextIO = sys.stdout
    _lock = threading.RLock()  # reentrant: a line said while one is written (a signal handler) cannot deadlock

    def __call__(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"==> {text}\n")
            self.stream.flush()


say = Progress()


@dataclass
class Program:
    """The stack program to rehearse: its Pulumi project name, its directory, and how to run it."""

    project: str
    directory: Path | None
    main: Path | None
    config: dict[str, str] = field(default_factory=dict)

    def run(self) -> None:
        if self.main is None:
            from imm_faces.components import program

            program.run()
        else:
            runpy.run_path(str(self.main), run_name="__main__")


INTERRUPTED = threading.Event()
"""Set by SIGTERM or Ctrl-C during a rehearsal."""


@contextmanager
def emulator_environment(credentials: Credentials) -> Iterator[dict[str, str]]:
    """This process's environment without the user's Alibaba Cloud identity, with the emulator's keys; set
    for the duration (verify runs in this process) and restored afterwards. Yields it for child processes."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(CREDENTIAL_VARIABLES):
            del os.environ[name]
    os.environ.update(credentials.environment())
    try:
        yield dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def use_emulator(
    args: argparse.Namespace, stack: contextlib.ExitStack, tmp: Path, credentials: Credentials
) -> tuple[str, Path, bool]:
    """(endpoint, OSS root, started here): the running one of ``--endpoint``, checked, or one started in ``tmp``."""
    if args.endpoint:
        endpoint, oss_root = args.endpoint.rstrip("/"), Path(args.oss_root)
        check_endpoint(endpoint, credentials)
        say(f"IMM emulator at {endpoint} (already running; photos go to {oss_root})")
        return endpoint, oss_root, False
    # The emulator extra (uvicorn) and the vision extra: checked by the command before it runs.
    from imm_faces.emulator.analysis import default_analyzer
    from imm_faces.emulator.server import Emulator

    analyzer = default_analyzer()
    if not analyzer.faces_available:
        say("face analysis is unavailable (install imm-faces[vision]); clustering will report it")
    oss_root = tmp / "oss"
    oss_root.mkdir()
    emu = stack.enter_context(
        Emulator(db=tmp / "imm.db", oss_root=oss_root, analyzer=analyzer, access_keys=[credentials])
    )
    say(f"IMM emulator at {emu.endpoint}")
    return emu.endpoint, oss_root, True


def conclude(
    args: argparse.Namespace,
    program: Program,
    seconds: float,
    code: int | None,
    created: list[Created],
    outputs: dict[str, Any],
    reports: dict[str, Any],
    left: list[str],
    kept: list[str],
    pulumi: str | None = None,
) -> int:
    """The last line (and with --json the summary): passed when verify passed and nothing made is left.
    ``pulumi``: the real engine's version (None: the mocks ran the program)."""
    verdict = "PASSED" if code == EXIT_OK and not left else "FAILED"
    seconds = round(seconds, 1)
    behind = "everything (--keep)" if args.keep else ", ".join(left) or "nothing"
    adopted = f"; kept as adopted: {', '.join(kept)}" if kept else ""
    checked = "verify not run" if code is None else f"verify exit {code}"
    engine = f"the real Pulumi engine {pulumi}" if pulumi else "the Pulumi SDK's mocks"
    say(f"rehearsal {verdict} in {seconds} s ({engine}; {checked}; left behind: {behind}{adopted})")
    how_to_reach_imm_faces()
    if args.json:
        resources = [
            {
                "type": r.type,
                "name": r.name,
                "id": r.id,
                "created": r.dynamic and not is_adopted(r),
                "adopted": is_adopted(r),
            }
            for r in created
        ]
        summary = {
            "passed": verdict == "PASSED",
            "seconds": seconds,
            "engine": "real" if pulumi else "mocks",
            "pulumi": pulumi,
            "project": program.project,
            "stack": args.stack,
            "outputs": outputs,
            "resources": resources,
            "verify_exit": code,
            "verify": reports,
            "kept": bool(args.keep),
            "left_behind": left,
            "kept_adopted": kept,
            "emulator_empty": not left and not kept and not args.keep,
        }
        print(json.dumps(summary, indent=2))
    return EXIT_OK if verdict == "PASSED" else EXIT_FAILED


def check_endpoint(endpoint: str, credentials: Credentials) -> None:
    """A running emulator must accept the rehearsal's key before anything is created (else every step, the
    teardown included, would fail with the same refusal)."""
    try:
        with ImmClient(endpoint=endpoint, credentials=credentials, timeout=10) as imm:
            imm.call(projects.ListProjects, max_results=1)
    except TransportError as exc:
        raise UsageError(f"--endpoint {endpoint}: {exc}") from None
    except ImmError as exc:
        raise UsageError(
            f"--endpoint {endpoint} refused the key {credentials.access_key_id} ({exc.code}): give the keys that "
            f"emulator was started with, --access-key-file FILE or ${KEYS_ENV} as for `imm-faces emulator`"
        ) from None


def keys_to_show(credentials: Credentials) -> str:
    """Where the kept emulator's key comes from; the secret only when it is the documented default."""
    if credentials == DEFAULT_ACCESS_KEY:
        keys = " ".join(f"{k}={v}" for k, v in credentials.environment().items())
        return f"its keys, documented defaults: {keys}"
    return f"the key {credentials.access_key_id} you gave"


def is_adopted(resource: Created) -> bool:
    """An IMM object that existed before and that the stack took over (``adoptExisting``)."""
    return bool(resource.dynamic and resource.outputs.get("adopted"))


def is_kept(resource: Created) -> bool:
    """What `pulumi destroy` keeps: an adopted object, unless ``deleteAdopted``."""
    return is_adopted(resource) and not resource.outputs.get("delete_adopted")


def announce(resource: Created) -> None:
    verb = "adopted " if is_adopted(resource) else "created " if resource.dynamic else "recorded"
    say(f"{verb} {resource.type} {resource.name}" + (f" -> {resource.id}" if resource.dynamic else ""))


def provider_config(credentials: Credentials) -> dict[str, str]:
    """The provider host's Configure: the emulator's keys as stack config, which outrank the environment."""
    config = {"alicloud:accessKey": credentials.access_key_id, "alicloud:secretKey": credentials.access_key_secret}
    if credentials.security_token:
        config["alicloud:securityToken"] = credentials.security_token
    return config


def how_to_reach_imm_faces() -> None:
    """Run as `.venv/bin/imm-faces` or by the quickstart (which puts .venv/bin on its own PATH only), say how to
    reach this command afterwards: a new shell does not find it."""
    here = Path(sys.executable).parent
    path = os.environ.get("IMM_FACES_CALLER_PATH", os.environ.get("PATH", ""))
    found = shutil.which("imm-faces", path=path)
    if found and Path(found).resolve().parent == here.resolve():
        return
    venv = here.parent
    shown = str(venv.absolute())
    say(
        f"imm-faces is installed in {shown}, which is not on your PATH: `source {shown}/bin/activate` in each "
        f"new shell, then e.g. `imm-faces verify --help`; or run `{shown}/bin/imm-faces` directly"
    )


class StagingError(Exception):
    """The photos could not be put where a binding points (the message says where and why)."""


class Photos:
    """Puts the photos where each binding points, just before the binding is created, and takes away what it put
    there at the end; remembers how many images of each person every dataset received (to know how many face
    groups IMM can form).

    Nothing in the OSS root is overwritten: a file already there with the same bytes (another stack's rehearsal
    on a shared emulator) is left to its owner, one with other bytes stops the rehearsal. Staging runs on the
    SDK's thread: :meth:`close` waits for one under way and refuses the next (an interrupt, the teardown)."""

    def __init__(self, photos: str | None, oss_root: Path, scratch: Path, *, shared: bool) -> None:
        self.photos = photos
        self.oss_root = oss_root
        self.shared = shared
        """A running emulator's OSS root (--oss-root), not one of the rehearsal's own temporary folder."""
        self.scratch = scratch
        self.images: dict[tuple[str, str], dict[str, int]] = {}
        """(project, dataset) -> person -> images staged (empty for --photos: the people are unknown)."""
        self.staged: list[Path] = []
        """The files this rehearsal wrote into the OSS root, in order."""
        self._made: list[Path] = []  # the folders it created for them, parents first
        self._sample: tuple[dict[str, list[str]], list[str]] | None = None  # people's keys, keys with no face
        self._lock = threading.Lock()
        self._closed = False

    def stage(self, kind: str, inputs: dict[str, Any]) -> None:
        if kind != "Binding" or not isinstance(inputs.get("uri"), str):
            return
        bucket, prefix = split_oss_uri(inputs["uri"])
        target = self.oss_root / bucket / prefix
        counts = self.images.setdefault((str(inputs.get("project_name")), str(inputs.get("dataset_name"))), {})
        with self._lock:
            if self._closed:
                raise StagingError("interrupted: no more photos are staged")
            if self.photos:
                say(f"photos: {self.photos} -> {inputs['uri']}")
                self._place(Path(self.photos), target)
                return
            say(f"sample photos -> {inputs['uri']} (face_recognition 1.3.0, from the cache)")
            people, no_face = self._sample_bucket()
            self._place(self.scratch, target)
        for person, keys in people.items():
            counts[person] = counts.get(person, 0) + len(keys)
        who = ", ".join(f"{len(k)} of {p}" for p, k in people.items())
        say(
            f"{inputs['uri']}: {len(no_face) + sum(map(len, people.values()))} photos: {who}, {len(no_face)} with "
            "no face"
        )

    def _sample_bucket(self) -> tuple[dict[str, list[str]], list[str]]:
        """The sample bucket (with its derived photos), laid out once in the scratch folder."""
        if self._sample is None:
            try:
                bucket = write_sample_bucket(self.scratch)
            except SamplePhotosError as exc:  # fetched before the rehearsal started: only if the cache went
                raise StagingError(f"the sample photos: {exc}") from None
            self._sample = bucket.people, bucket.no_face
        return self._sample

    def _place(self, source: Path, target: Path) -> None:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            dest = target / path.relative_to(source)
            if dest.is_file() and filecmp.cmp(path, dest, shallow=False):
                continue  # the same photo, put there by someone else (another stack's rehearsal): theirs
            if dest.exists() or dest.is_symlink():
                raise StagingError(
                    f"staging the photos: {dest} already exists with other content; rehearse never overwrites what "
                    f"is in --oss-root: point the binding at another location"
                )
            self._make_folders(dest.parent)
            shutil.copyfile(path, dest)
            self.staged.append(dest)

    def _make_folders(self, folder: Path) -> None:
        missing = []
        while not folder.exists() and folder != self.oss_root:
            missing.append(folder)
            folder = folder.parent
        for made in reversed(missing):
            made.mkdir()
            self._made.append(made)

    def close(self) -> None:
        """Wait for a staging under way; refuse any later one."""
        with self._lock:
            self._closed = True

    def remove(self) -> list[str]:
        """Delete what was staged (and the folders made for it); return what could not be deleted."""
        self.close()
        failed = []
        for path in reversed(self.staged):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                failed.append(path)
        for folder in reversed(self._made):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        if self.staged and not failed and self.shared:
            say(f"removed the {len(self.staged)} photos it staged under {self.oss_root}")
        self.staged = failed
        return [f"{len(failed)} staged photos under {self.oss_root}"] if failed else []

    def expected_groups(self, project: str, dataset: str) -> int | None:
        """How many face groups IMM forms from what was staged in that dataset (None: not known)."""
        counts = self.images.get((project, dataset))
        if self.photos or counts is None:
            return None

        return sum(1 for n in counts.values() if n >= FACE_GROUP_MIN_GOOD_FACES)  # the sample faces are all good


def stacks_in(outputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The FaceClustering outputs in a stack's outputs: the whole (this package's program) or each top-level
    value that holds ``project_name`` (a consumer's ``pulumi.export("faces", faces.outputs)``)."""
    if "project_name" in outputs:
        return {"": dict(outputs)}
    return {k: dict(v) for k, v in outputs.items() if isinstance(v, Mapping) and "project_name" in v}


def verify_outputs(
    outputs: dict[str, Any], out_path: Path, photos: Photos, *, json_mode: bool, html: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Write the outputs; run `imm-faces verify` on each FaceClustering in them. (exit code, reports)."""
    text = json.dumps(outputs, indent=2, sort_keys=True)
    say(f"stack outputs (`pulumi stack output --json`):\n{text}")
    out_path.write_text(text + "\n")
    found = stacks_in(outputs)
    if not found:
        say("the outputs hold no FaceClustering outputs (no `project_name`): nothing to verify")
        return EXIT_FAILED, {}
    code, reports = EXIT_OK, {}
    for index, (key, one) in enumerate(found.items()):
        path = out_path if not key else out_path.with_name(f"{out_path.stem}.{key}.json")
        if key:
            path.write_text(json.dumps(one, indent=2, sort_keys=True) + "\n")
        verify_args = ["verify", "--outputs", str(path)]
        expected = photos.expected_groups(str(one["project_name"]), str(one["dataset_name"]))
        if expected:
            verify_args += ["--min-clusters", str(expected)]
        if html:
            verify_args += ["--html", html_path(html, key, first=index == 0)]
        say("imm-faces " + " ".join(verify_args) + (f"   # {key}" if key else ""))
        if json_mode:
            captured = io.StringIO()
            with contextlib.redirect_stdout(captured):
                result = imm_faces([*verify_args, "--json"])
            reports[key or "outputs"] = json.loads(captured.getvalue() or "null")
        else:
            result = imm_faces(verify_args)
        if result != EXIT_OK and photos.photos:
            say(
                f"with --photos, a face group forms only from {FACE_GROUP_MIN_GOOD_FACES} or more good photos of one "
                "person (IMM's rule): if verify found no figure cluster, the photos hold too few of anyone"
            )
        code = max(code, result)
    return code, reports


def html_path(html: str, key: str, *, first: bool) -> str:
    """Where verify writes the page of one FaceClustering: FILE for the first, FILE-stem.<key>.html after it."""
    return html if first else str(Path(html).with_suffix(f".{key}.html"))


def wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def left_behind(created: list[Created], endpoint: str, credentials: Credentials) -> tuple[list[str], list[str]]:
    """After the teardown: (what the rehearsal created that is still in the emulator, what it kept as adopted)."""
    objects = [r for r in created if r.dynamic and r.type.endswith((":Project", ":Dataset"))]
    made = {r.id for r in objects if not is_adopted(r)}
    kept = [f"{r.type.rsplit(':', 1)[-1].lower()} {r.id}" for r in objects if is_kept(r)]
    left: list[str] = []
    try:
        with ImmClient(endpoint=endpoint, credentials=credentials) as imm:
            for project in imm.paginate(projects.ListProjects):
                name = project.project_name or ""
                if name in made:
                    left.append(name)
                left += [
                    f"{name}/{d.dataset_name}"
                    for d in imm.paginate(datasets.ListDatasets, project_name=name)
                    if f"{name}/{d.dataset_name}" in made
                ]
    except ImmFacesError as exc:
        say(f"could not list what is left in the emulator: {exc}")
        return [f"unknown (listing failed: {exc})"], kept
    say("nothing the rehearsal made is left in the emulator" if not left else f"still in the emulator: {left}")
    return left, kept
