"""A rehearsal on the Pulumi SDK's mocks (no real engine here): the stack program runs in this process, every
IMM resource is created by the SDK's real dynamic-provider host process against the emulator."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # they import pulumi's SDK (the pulumi extra): imported when a rehearsal runs on the mocks
    from imm_faces.components.rehearsal.engine import RehearsalMocks
    from imm_faces.components.rehearsal.host import DynamicProviderHost
    from imm_faces.runtime.credentials import Credentials

from imm_faces.components.rehearsal.session import (
    INTERRUPTED,
    Photos,
    Program,
    StagingError,
    announce,
    conclude,
    emulator_environment,
    is_kept,
    keys_to_show,
    left_behind,
    provider_config,
    say,
    use_emulator,
    verify_outputs,
    wait_for_interrupt,
)


def rehearse(args: argparse.Namespace, program: Program, credentials: Credentials) -> int:
    from imm_faces.components.rehearsal.engine import RehearsalMocks
    from imm_faces.components.rehearsal.host import DynamicProviderHost

    started = time.monotonic()
    print(
        "imm-faces rehearse: an OFFLINE rehearsal. The stack program runs under the Pulumi SDK's mocks against a\n"
        "local IMM emulator. Not exercised: the Pulumi engine (state, diff, preview) and the alicloud plugin\n"
        "(the RAM role and policy are recorded, not created).\n",
        file=say.stream,
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="imm-faces-rehearsal-") as tmp, contextlib.ExitStack() as stack:
        endpoint, oss_root, own = use_emulator(args, stack, Path(tmp), credentials)
        photos = Photos(args.photos, oss_root, Path(tmp) / "sample", shared=not own)
        env = stack.enter_context(emulator_environment(credentials))
        host = stack.enter_context(
            DynamicProviderHost(config=provider_config(credentials), env=env, cwd=program.directory)
        )
        say(
            f"dynamic-provider host: `python -m pulumi.dynamic` (pid {host.pid})"
            + (f", started in {program.directory}" if program.directory else "")
        )
        mocks = RehearsalMocks(
            host, program.project, args.stack, endpoint=endpoint, before_create=photos.stage, on_resource=announce
        )
        where = f"{program.main}" if program.main else "imm_faces.components.program.run"
        say(
            f"running the stack program ({where}) as project {program.project}, stack {args.stack}, under "
            "the Pulumi SDK's mocks"
        )
        try:
            code, outputs, reports = _deploy_and_verify(args, program, mocks, photos, Path(tmp))
        except KeyboardInterrupt:  # BaseException: not caught inside
            photos.close()  # a staging under way (on the SDK's thread) finishes first; no other starts
            say("interrupted: deleting what the rehearsal created")
            teardown(mocks, host, endpoint, credentials)
            photos.remove()
            raise
        created = list(mocks.created)
        left: list[str] = []
        kept: list[str] = []
        if args.keep:
            say(
                f"--keep: everything stays in the emulator at {endpoint} ({keys_to_show(credentials)}), and the "
                f"photos in {oss_root}"
            )
            if own:
                say("Ctrl-C to stop it")
                wait_for_interrupt()
        else:
            left, kept = teardown(mocks, host, endpoint, credentials)
            left += photos.remove()
    return conclude(args, program, time.monotonic() - started, code, created, outputs, reports, left, kept)


def _deploy_and_verify(
    args: argparse.Namespace, program: Program, mocks: RehearsalMocks, photos: Photos, tmp: Path
) -> tuple[int | None, dict[str, Any], dict[str, Any]]:
    """(verify's exit code, or None when it did not run; the stack outputs; verify's reports): the program run
    under the mocks, a failure said in one line as `pulumi up` would say it, then verify on the outputs."""
    from imm_faces.components.rehearsal.engine import RehearsalError, run_program
    from imm_faces.components.rehearsal.host import ProviderCallError

    try:
        with program_path(program.directory):
            outputs = run_program(program.run, mocks, project=program.project, stack=args.stack, config=program.config)
    except Exception as exc:
        if INTERRUPTED.is_set():  # the loop stopped by SIGTERM/Ctrl-C (see sigterm_as_interrupt)
            raise KeyboardInterrupt from None
        if isinstance(exc, RehearsalError | ProviderCallError):
            print(f"imm-faces rehearse: deployment failed: {exc}", file=sys.stderr)
        elif isinstance(exc, StagingError):  # not the program's doing: where the photos go
            print(f"imm-faces rehearse: {exc}", file=sys.stderr)
        else:  # the program's own error (bad config, a bug), as `pulumi up` would show it
            print(f"imm-faces rehearse: the stack program failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None, {}, {}
    out_path = Path(args.outputs) if args.outputs else tmp / "outputs.json"
    code, reports = verify_outputs(outputs, out_path, photos, json_mode=args.json, html=args.html)
    return code, outputs, reports


@contextmanager
def program_path(directory: Path | None) -> Iterator[None]:
    """The program's directory first on sys.path while it runs, as the language host puts it."""
    if directory is None:
        yield
        return
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        sys.path.remove(str(directory))


def teardown(
    mocks: RehearsalMocks, host: DynamicProviderHost, endpoint: str, credentials: Credentials
) -> tuple[list[str], list[str]]:
    """Delete what the rehearsal created, as `pulumi destroy` would (an adopted object is kept, unless
    ``deleteAdopted``). Returns (what it created that is still there afterwards, what it kept as adopted)."""
    from imm_faces.components.rehearsal.host import ProviderCallError

    created = list(mocks.created)
    for resource in reversed([r for r in mocks.created if r.dynamic]):  # dependents first, as destroy does
        try:
            host.delete(resource.urn, resource.id, resource.outputs)
        except ProviderCallError as exc:
            say(f"deleting {resource.type} {resource.name} failed: {exc}")
            continue
        what = "kept    " if is_kept(resource) else "deleted "
        why = " (adopted: it existed before this stack; deleteAdopted deletes it)" if is_kept(resource) else ""
        say(f"{what}{resource.type} {resource.name}{why}")
    mocks.created = [c for c in mocks.created if not c.dynamic]
    return left_behind(created, endpoint, credentials)
