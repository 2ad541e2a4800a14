"""``imm-faces verify``: the post-deploy smoke check.

Reads a stack's outputs (from the Pulumi CLI, a file, or stdin), then checks that the project and dataset
exist, that the clustering task succeeded, and that every figure cluster (or a sample) is well formed.
"""

from __future__ import annotations

import argparse
import sys

HELP = "check a deployed stack: project, dataset, clustering task and every figure cluster"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("where the stack outputs come from (default: the current Pulumi stack)")
    source.add_argument("--stack", help="Pulumi stack to read (`pulumi stack output --stack NAME`)")
    source.add_argument("--cwd", help="Pulumi project directory (`pulumi --cwd DIR`)")
    source.add_argument(
        "--outputs",
        metavar="FILE",
        help="read outputs from FILE ('-' for stdin), in `pulumi stack output --json` format",
    )
    conn = parser.add_argument_group("connection")
    conn.add_argument("--endpoint", help="IMM endpoint URL, overriding the stack's `endpoint` output")
    conn.add_argument("--profile", help="aliyun CLI profile in ~/.aliyun/config.json (default: ALIBABA_CLOUD_PROFILE)")
    conn.add_argument("--signature-version", choices=("v3", "v2"), default="v3", help="request signature (default v3)")
    conn.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    what = parser.add_argument_group("what to check")
    what.add_argument("--sample", type=_positive, metavar="N", help="check N figure clusters spread over the list")
    what.add_argument(
        "--cluster-id",
        action="append",
        dest="cluster_ids",
        metavar="ID",
        help="check this cluster (repeatable)",
    )
    what.add_argument("--min-clusters", type=int, default=0, metavar="N", help="fail when fewer than N clusters exist")
    what.add_argument("--concurrency", type=_positive, default=8, help="parallel GetFigureCluster calls (default 8)")
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from imm_faces.runtime.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE
    from imm_faces.runtime.client import AsyncImmClient
    from imm_faces.runtime.credentials import resolve_credentials
    from imm_faces.runtime.errors import ConfigError, ImmError, TransportError
    from imm_faces.runtime.outputs import read_outputs_file, read_stack_outputs
    from imm_faces.runtime.verify.report import render_text
    from imm_faces.runtime.verify.run import verify_deployment

    def progress(done: int, total: int) -> None:
        sys.stderr.write(f"\rchecked {done}/{total} figure clusters")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    async def go() -> int:
        outputs = read_outputs_file(args.outputs) if args.outputs else read_stack_outputs(args.stack, args.cwd)
        creds = resolve_credentials(profile=args.profile)
        endpoint = args.endpoint or outputs.endpoint
        async with AsyncImmClient(
            region=outputs.region, endpoint=endpoint, credentials=creds,
            signature_version=args.signature_version, timeout=args.timeout,
        ) as client:  # fmt: skip
            report = await verify_deployment(
                client,
                outputs,
                cluster_ids=args.cluster_ids,
                sample=args.sample,
                concurrency=args.concurrency,
                min_clusters=args.min_clusters,
                progress=progress if sys.stderr.isatty() and not args.json else None,
            )
        if args.json:
            print(json.dumps(report.to_json(), indent=2))
        else:
            print(render_text(report))
        return EXIT_OK if report.passed else EXIT_FAILED

    try:
        return asyncio.run(go())
    except (ConfigError, TransportError) as exc:
        print(f"imm-faces verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImmError as exc:  # an unexpected service error outside any single check
        print(f"imm-faces verify: IMM error: {exc}", file=sys.stderr)
        return EXIT_FAILED
