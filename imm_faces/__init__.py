"""imm-faces: infrastructure as code for face clustering on Alibaba Cloud IMM.

The one import root. Its subpackages live in the repository's top-level folders (``components/``,
``runtime/``, ``emulator/``); ``imm_faces/<name>`` are symbolic links to them, so the source tree, the
editable install and the built wheel all import them as ``imm_faces.components``, ``imm_faces.runtime`` and
``imm_faces.emulator``, and a project with its own ``components`` or ``runtime`` package is never shadowed.
Importing this package imports nothing else.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
