"""``imm-faces verify --html FILE``: a self-contained HTML page of the figure clusters a verify run checked.

:mod:`.collect` gathers (IMM calls, thumbnails made by OSS's image processing and read through presigned
GETs), :mod:`.html` renders, :mod:`.cli` adds the options to ``imm-faces verify`` and writes the file. With
Pillow (the ``report`` extra) a photo OSS cannot process is thumbnailed here. Importing this package imports
nothing (``imm-faces verify --help`` stays light).
"""

DEFAULT_PHOTOS = 8
"""Member photos shown per cluster."""
DEFAULT_MAX_CLUSTERS = 1000
"""Clusters shown (failed ones first, then the largest)."""
DEFAULT_LINK_EXPIRY = 24 * 3600
"""Seconds a presigned photo link works."""
