"""Which optional extras of ``imm-faces`` a command needs, and a clear message when one is missing.

The extras and their packages are read from the installed distribution's own metadata (``pyproject.toml``'s
``[project.optional-dependencies]``), so this module holds no second list of them.
"""

from __future__ import annotations

import re
from importlib import metadata

DISTRIBUTION = "imm-faces"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?[^;]*;\s*(?P<marker>.*)$")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def extra_packages(extra: str) -> list[str]:
    """The distributions the ``extra`` of imm-faces requires directly (extras of extras are followed)."""
    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    packages: list[str] = []
    for line in requirements:
        match = _REQUIREMENT.match(line)
        if not match or extra not in _EXTRA.findall(match.group("marker")):
            continue
        name, nested = match.group(1), match.group(2)
        if name.lower().replace("_", "-") == DISTRIBUTION and nested:
            for inner in nested.strip("[]").split(","):
                packages += extra_packages(inner.strip())
        else:
            packages.append(name)
    return packages


def missing_extras(command: str, *extras: str) -> str | None:
    """None when every package of ``extras`` is installed; otherwise the message that says what to install."""
    absent: list[str] = []
    for extra in extras:
        for package in extra_packages(extra):
            try:
                metadata.version(package)
            except metadata.PackageNotFoundError:
                absent.append(package)
    if not absent:
        return None
    wanted = ",".join(extras)
    return (
        f"imm-faces {command}: needs the {', '.join(extras)} extra{'s' if len(extras) > 1 else ''} "
        f"(missing: {', '.join(sorted(set(absent)))}). Install it with: pip install 'imm-faces[{wanted}]'"
    )
