"""The Pulumi program (see Pulumi.yaml): everything lives in components.program."""

from components.program import run

run()
