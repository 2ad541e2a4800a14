"""The Pulumi program (see Pulumi.yaml): everything lives in imm_faces.components.program."""

from imm_faces.components.program import run

run()
