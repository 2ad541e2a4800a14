"""``imm-faces verify --html FILE``: a self-contained HTML page of the figure clusters a verify run checked.

:mod:`.collect` gathers (IMM calls, OSS reads through presigned GETs, thumbnails), :mod:`.html` renders,
:mod:`.cli` adds the options to ``imm-faces verify`` and writes the file. Thumbnails need Pillow (the
``report`` extra); without it the page links the objects with presigned URLs. Importing this package imports
nothing (``imm-faces verify --help`` stays light).
"""
