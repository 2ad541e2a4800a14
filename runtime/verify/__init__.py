"""``imm-faces verify``: the smoke check (:mod:`.run`), its rules (:mod:`.checks`, :mod:`.consistency`) and its
reports (:mod:`.report`). Importing this package imports nothing; the defaults below are shared by the CLI
(which must start light) and the run."""

DEFAULT_SAMPLE = 25
"""Clusters fetched one by one (GetFigureCluster) and checked against their files."""
DEFAULT_CONCURRENCY = 8
"""Requests in flight."""
