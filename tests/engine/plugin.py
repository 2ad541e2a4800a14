"""The ``engine`` marker: a test that runs the real Pulumi engine (:mod:`tests.engine.pulumi_engine`).

Where no engine is found the test is skipped, saying why and how to get one; in CI (``CI`` set) it fails
instead, because CI provides the engine (``.ci/run`` runs ``scripts/pulumi-engine.sh``) and a silent skip would
hide that it did not.
"""

from __future__ import annotations

import pytest

from tests.engine.pulumi_engine import Engine, in_ci, locate


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engine: runs the real Pulumi engine (scripts/pulumi-engine.sh); skipped without one, except in CI"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("engine") is None:
        return
    found = locate()
    if isinstance(found, Engine):
        return
    if in_ci():
        pytest.fail(f"CI runs the real Pulumi engine, and none was found: {found}", pytrace=False)
    pytest.skip(f"no real Pulumi engine: {found}")


@pytest.fixture(scope="session")
def pulumi_engine() -> Engine:
    """The real engine (the ``engine`` marker has already skipped or failed a test where there is none)."""
    found = locate()
    if not isinstance(found, Engine):
        pytest.fail(f"no real Pulumi engine: {found}", pytrace=False)
    return found
