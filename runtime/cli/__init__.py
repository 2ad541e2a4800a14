"""The ``imm-faces`` command line."""
