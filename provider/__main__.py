"""Entry point of the `imm` provider plugin folder: `python provider/ [--logtostderr] [-v=N] <engine address>`.

The code is `imm_faces.components.providers.plugin`, installed with imm-faces; this file only starts it.
"""

from imm_faces.components.providers.plugin import main

main()
