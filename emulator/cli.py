"""``imm-faces emulator``: run a local IMM until interrupted."""

from __future__ import annotations

import argparse

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
        help="accepted credentials (repeatable; default: the documented emulator key)",
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from imm_faces.emulator.auth import parse_access_key
    from imm_faces.emulator.server import DEFAULT_ACCESS_KEY, Emulator
    from imm_faces.runtime.cli.main import EXIT_OK, EXIT_USAGE
    from imm_faces.runtime.credentials import ENV_NAMES

    try:
        keys = [parse_access_key(k) for k in args.access_key] if args.access_key else [DEFAULT_ACCESS_KEY]
    except ValueError as exc:
        print(f"imm-faces emulator: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    emulator = Emulator(host=args.host, port=args.port, db=args.db, oss_root=args.oss_root, access_keys=keys)
    print(f"IMM emulator listening on {emulator.endpoint}", flush=True)
    print(f"  OSS root: {emulator.oss_root}   state: {args.db}", flush=True)
    faces = emulator.jobs.analyzer
    print(f"  face analysis: {type(faces).__name__}" if faces.faces_available
          else "  face analysis: unavailable (pip install 'imm-faces[vision]')", flush=True)  # fmt: skip
    key_id, secret_name, token_name = ENV_NAMES
    for key in keys:
        sts = f"  {token_name}=<the STS token given>" if key.security_token else ""
        # The secret is printed only when it is the public, documented default.
        secret = key.access_key_secret if key == DEFAULT_ACCESS_KEY else "<the secret given>"
        print(f"  credentials: {key_id}={key.access_key_id} {secret_name}={secret}{sts}", flush=True)
    emulator.serve()
    return EXIT_OK
