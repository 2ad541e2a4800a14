"""imm-faces runtime: IMM's 2020-09-30 API as one typed contract, a signed client, stack outputs and the
``imm-faces verify`` smoke check. This package never imports pulumi."""

__version__ = "0.1.0"
