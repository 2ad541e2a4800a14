"""``imm-faces emulator``: run a local IMM until interrupted.

Accepted keys come from ``--access-key`` (visible to every local user in ``ps``), ``--access-key-file`` (one
``ID:SECRET[:STS_TOKEN]`` a line, ``#`` comments) and ``$IMM_FACES_EMULATOR_ACCESS_KEYS`` (the same, separated by
commas or whitespace); all that are given are accepted; with none, the documented default key. A start-up
problem (state file, OSS root, port, keys) is one line naming it and its fix, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY, KEYS_ENV, KeySourceError, load_keys
from imm_faces.runtime.auth.config import ENV_NAMES
from imm_faces.runtime.cli.extras import missing_extras
from imm_faces.runtime.cli.main import EXIT_OK, EXIT_USAGE

HELP = "run a local IMM emulator (127.0.0.1 by default)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: pick a free one)")
    parser.add_argument("--db", default=":memory:", help="SQLite file for state, or :memory: (default)")
    parser.add_argument("--oss-root", help="directory standing in for OSS: oss://bucket/key is <DIR>/bucket/key")
    parser.add_argument(
        "--access-key",
        action="append",
        metavar="ID:SECRET[:STS_TOKEN]",
        help=f"accepted credentials (repeatable; visible in ps: prefer --access-key-file or ${KEYS_ENV})",
    )
    parser.add_argument(
        "--access-key-file",
        metavar="PATH",
        help=f"file of accepted credentials, one ID:SECRET[:STS_TOKEN] a line (also: ${KEYS_ENV})",
    )
    parser.add_argument(
        "--ram-config",
        metavar="PATH",
        help="RAM as the emulator knows it (JSON): policies of access keys, roles with their trust policy and "
        "policies, OIDC providers with their keys (without it, AssumeRoleWithOIDC is refused)",
    )


def run(args: argparse.Namespace) -> int:
    if problem := missing_extras("emulator", "emulator"):
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    # The server needs the emulator extra (uvicorn): imported once it is known to be installed.
    from imm_faces.emulator.ram import RamConfigError, load_ram
    from imm_faces.emulator.server import Emulator, StartupError

    def fail(message: str) -> int:
        print(f"imm-faces emulator: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    try:
        keys = load_keys(args, os.environ) or [DEFAULT_ACCESS_KEY]
    except KeySourceError as exc:
        return fail(f"{exc}")
    if not 0 <= args.port <= 65535:
        return fail(f"--port {args.port} is not a port number; give 0-65535 (0 picks a free one)")
    ram = None
    if args.ram_config:
        try:
            ram = load_ram(args.ram_config)
        except RamConfigError as exc:
            return fail(f"--ram-config {args.ram_config}: {exc}")
    try:
        emulator = Emulator(
            host=args.host, port=args.port, db=args.db, oss_root=args.oss_root, access_keys=keys, ram=ram
        )
    except StartupError as exc:
        return fail(f"{exc.problem}; {exc.fix}")
    # The socket is bound and listening at this point: clients that connect now are served once the loop runs.
    print(f"IMM emulator listening on {emulator.endpoint}", flush=True)
    print(f"  OSS root: {emulator.oss_root}   state: {args.db}", flush=True)
    faces = emulator.jobs.analyzer
    print(
        f"  face analysis: {type(faces).__name__}"
        if faces.faces_available
        else "  face analysis: unavailable (pip install 'imm-faces[vision]')",
        flush=True,
    )
    key_id, secret_name, token_name = ENV_NAMES
    for key in keys:
        sts = f"  {token_name}=<the STS token given>" if key.security_token else ""
        # The secret is printed only when it is the public, documented default.
        secret = key.access_key_secret if key == DEFAULT_ACCESS_KEY else "<the secret given>"
        print(f"  credentials: {key_id}={key.access_key_id} {secret_name}={secret}{sts}", flush=True)
    emulator.serve()
    return EXIT_OK
