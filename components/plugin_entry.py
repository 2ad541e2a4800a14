"""The ``imm`` provider plugin's entry point (``pulumi-resource-imm``, and ``provider/pulumi-resource-imm`` runs
``python -m`` this), kept apart from the plugin itself so that a missing ``pulumi`` extra is a one-line message,
not an import traceback."""

from __future__ import annotations

import sys

from imm_faces.runtime.cli.extras import missing_extras
from imm_faces.runtime.cli.main import EXIT_USAGE


def main(argv: list[str] | None = None) -> None:
    if problem := missing_extras("provider plugin (pulumi-resource-imm)", "pulumi"):
        print(problem, file=sys.stderr)
        sys.exit(EXIT_USAGE)
    from imm_faces.components.providers.plugin import main as serve

    serve(argv)


if __name__ == "__main__":
    main()
