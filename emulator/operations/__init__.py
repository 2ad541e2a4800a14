"""IMM's behaviour, one module per resource as in :mod:`imm_faces.runtime.operations`; the service
(:mod:`imm_faces.emulator.service`) joins them."""
