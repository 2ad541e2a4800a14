"""Quickstart main job, fully offline: a local IMM, a provisioned project and dataset, then the smoke check.

1. start the IMM emulator on a free loopback port (state in a temporary SQLite file);
2. provision what a stack provisions (project, dataset, a binding to a local "bucket" folder) with the
   runtime client, and run a figure clustering task on it;
3. write the stack outputs exactly as `pulumi stack output --json` prints them;
4. run `imm-faces verify` on those outputs and print its report.

Until `imm-faces rehearse` (the Pulumi stack under the SDK's mocks) lands, this is the most complete flow.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from emulator.sample_photos import write_sample_bucket
from emulator.server import DEFAULT_ACCESS_KEY, Emulator
from runtime.cli.main import main as imm_faces
from runtime.client import ImmClient
from runtime.credentials import Credentials
from runtime.operations import bindings, datasets, projects, tasks
from runtime.waiters import wait_for_task

PROJECT, DATASET, BUCKET = "quickstart-project", "quickstart-faces", "quickstart-photos"


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def run() -> int:
    with tempfile.TemporaryDirectory(prefix="imm-faces-quickstart-") as tmp:
        work = Path(tmp)
        step("fetching the sample photos (face_recognition 1.3.0 sdist from PyPI, cached after the first run)")
        sample = write_sample_bucket(work / "oss" / BUCKET)
        step(
            f"bucket folder oss://{BUCKET}: {len(sample.keys)} photos, people: "
            + ", ".join(f"{p} x{len(k)}" for p, k in sample.people.items())
            + f", {len(sample.no_face)} without a face"
        )
        with Emulator(db=work / "imm.db", oss_root=work / "oss") as emu:
            step(f"IMM emulator running at {emu.endpoint} (OSS root {emu.oss_root})")
            creds = Credentials(DEFAULT_ACCESS_KEY.access_key_id, DEFAULT_ACCESS_KEY.access_key_secret)
            with ImmClient(endpoint=emu.endpoint, credentials=creds) as imm:
                step(f"CreateProject {PROJECT}, CreateDataset {DATASET}, CreateBinding oss://{BUCKET}")
                imm.call(projects.CreateProject, project_name=PROJECT, description="imm-faces quickstart")
                imm.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=DATASET)
                imm.call(bindings.CreateBinding, project_name=PROJECT, dataset_name=DATASET, uri=f"oss://{BUCKET}")
                created = imm.call(tasks.CreateFigureClusteringTask, project_name=PROJECT, dataset_name=DATASET)
                task_id = created.task_id or ""
                step(f"CreateFigureClusteringTask -> {task_id}; waiting for GetTask")
                task = wait_for_task(imm, PROJECT, task_id, timeout=60, interval=0.1)
                step(f"task {task.status}" + (f" ({task.code}: {task.message})" if task.code else ""))
            outputs = work / "outputs.json"
            doc = {"project_name": PROJECT, "dataset_name": DATASET, "region": "cn-hangzhou",
                   "endpoint": emu.endpoint, "clustering_task_id": task_id}  # fmt: skip
            outputs.write_text(json.dumps(doc, indent=2))
            step(f"stack outputs (pulumi stack output --json format):\n{outputs.read_text()}")
            os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"] = creds.access_key_id
            os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = creds.access_key_secret
            step("imm-faces verify --outputs outputs.json")
            code = imm_faces(["verify", "--outputs", str(outputs), "--min-clusters", str(len(sample.people))])
        step(f"done: verify exited {code}; the emulator stopped and its temporary state was removed")
        return code


if __name__ == "__main__":
    sys.exit(run())
