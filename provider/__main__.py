"""Entry point of the `imm` provider plugin folder: `python provider/ [--logtostderr] [-v=N] <engine address>`.

The code is `imm_faces.components.providers.plugin` (started by `imm_faces.components.plugin_entry`), installed
with imm-faces; this file only starts it.
"""

from imm_faces.components.plugin_entry import main

main()
