"""Deploy the imm-faces stack and smoke-check it, in one CI step: Pulumi's Automation API, then imm-faces' verify API.

    python deploy_and_verify.py --stack prod --config region=cn-hangzhou \\
        --config 'ossLocations=["oss://my-photo-bucket/family/"]' --min-clusters 1

1. ``pulumi up`` of this package's stack program (``imm_faces.components.program``: the config keys of the
   repository's ``Pulumi.yaml``) as an inline program of ``pulumi.automation``, which runs the Pulumi CLI found on
   PATH with the backend and secrets provider of the usual ``PULUMI_*`` variables (``PULUMI_BACKEND_URL``,
   ``PULUMI_ACCESS_TOKEN``, ``PULUMI_CONFIG_PASSPHRASE``...). The engine's progress goes to stderr.
2. ``verify_deployment`` (``imm_faces.runtime.verify.run``) on the stack's outputs, in this process, signed by the
   credential chain the deployment used: the stack's ``alicloud:*`` config first, then the environment
   (``ALIBABA_CLOUD_ACCESS_KEY_ID``...), a CLI profile, an OIDC role... (``imm_faces.runtime.credentials``).
3. verify's report on stdout, and the exit code a pipeline acts on: 0 deployed and every check passed; 1 the
   deployment failed or a check failed; 2 a usage, configuration or credential error.

Needs ``pip install 'imm-faces[pulumi]'`` and the Pulumi CLI v3.139.0 or later.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from typing import Any

import pulumi.automation as auto

from imm_faces.components.program import run as stack_program
from imm_faces.runtime.client import AsyncImmClient
from imm_faces.runtime.credentials import CredentialSettings, resolve_provider
from imm_faces.runtime.errors import ConfigError, ImmFacesError
from imm_faces.runtime.outputs import StackOutputs, parse_outputs, select_outputs
from imm_faces.runtime.verify.base import VerifyReport
from imm_faces.runtime.verify.report import render_text
from imm_faces.runtime.verify.run import verify_deployment

PROJECT = "imm-faces"
"""The Pulumi project of the stack program (its config keys are ``imm-faces:<key>``)."""
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stack", required=True, help="the stack to deploy (created when it does not exist)")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="stack config (repeatable; a key without namespace is the program's, e.g. region)",
    )
    parser.add_argument(
        "--min-clusters", type=int, default=0, metavar="N", help="fail when the dataset has fewer figure clusters"
    )
    return parser.parse_args(argv)


def program() -> None:
    """The inline program: this package's stack program, exactly what the repository's ``__main__.py`` runs."""
    stack_program()


def deploy(stack_name: str, config: dict[str, str]) -> tuple[auto.Stack, dict[str, Any]]:
    """``pulumi up``; the stack and its outputs as ``pulumi stack output --json`` gives them."""
    stack = auto.create_or_select_stack(stack_name=stack_name, project_name=PROJECT, program=program)
    stack.set_all_config({key: auto.ConfigValue(value) for key, value in config.items()})
    result = stack.up(on_output=lambda line: print(line, file=sys.stderr, flush=True))
    return stack, {key: output.value for key, output in result.outputs.items()}


async def smoke_check(
    outputs: StackOutputs, stack_config: Mapping[str, auto.ConfigValue], min_clusters: int
) -> VerifyReport:
    """imm-faces verify, as ``imm-faces verify --stack`` runs it: signed as the deployment was."""
    settings = CredentialSettings.from_config(
        lambda key: stack_config[key].value if key in stack_config else None, "stack config"
    )
    credentials = resolve_provider(settings=settings)
    async with AsyncImmClient(region=outputs.region, endpoint=outputs.endpoint, credentials=credentials) as client:
        return await verify_deployment(client, outputs, min_clusters=min_clusters)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    config = {}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"deploy-and-verify: --config {item!r}: must be KEY=VALUE", file=sys.stderr)
            return EXIT_USAGE
        config[key if ":" in key else f"{PROJECT}:{key}"] = value
    try:
        stack, document = deploy(args.stack, config)
    except auto.CommandError as exc:  # the engine's own account of what failed is in its output, above
        print(f"deploy-and-verify: pulumi up of stack {args.stack} failed: {_errors(exc)}", file=sys.stderr)
        return EXIT_FAILED
    try:
        outputs = parse_outputs(select_outputs(document, None, f"stack {args.stack}"), f"stack {args.stack}")
        report = asyncio.run(smoke_check(outputs, stack.get_all_config(), args.min_clusters))
    except ConfigError as exc:  # outputs not in the contract, no credentials, access refused
        print(f"deploy-and-verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImmFacesError as exc:
        print(f"deploy-and-verify: verify failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(render_text(report))
    return EXIT_OK if report.passed else EXIT_FAILED


def _errors(exc: auto.CommandError) -> str:
    """The first error line of a failed CLI command (the engine's diagnostic), else its last line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return next((line for line in lines if line.startswith("error:")), lines[-1] if lines else "no output")


if __name__ == "__main__":
    sys.exit(main())
