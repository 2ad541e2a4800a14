"""A dataset of many figure clusters for the benchmarks, planted in the emulator's store in seconds.

A real small deployment runs first (the sidecar analyzer, two people), so every document has the shape the
emulator gives it; then its first cluster is cloned ``clusters`` times, ``per_cluster`` files each, one face
per file: file documents, the faces index (which SimpleQuery reads for cluster ids) and cluster documents
(validated as the emulator stores them, :func:`~imm_faces.emulator.figures.cluster_document`).
"""

from __future__ import annotations

import copy
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from imm_faces.emulator.figures import cluster_document
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from imm_faces.emulator.store import ClusterKey, Clusters, FileKey, Files
from imm_faces.runtime.client import ImmClient
from tests.fakes import SidecarAnalyzer
from tests.helpers import DATASET, PROJECT, TWO_PEOPLE, cluster_ids, deploy

BUCKET = "photos"


def plant_clusters(
    db: Path,
    oss_root: Path,
    clusters: int,
    per_cluster: int = 3,
    *,
    suffix: str = ".png",
    file_fields: Mapping[str, Any] | None = None,
    figure_fields: Mapping[str, Any] | None = None,
    write_object: Callable[[Path], None] | None = None,
) -> None:
    """Plant ``clusters`` clusters of ``per_cluster`` files under ``oss://photos/bench/``. ``file_fields`` and
    ``figure_fields`` override the template's; ``write_object`` makes each object on disk (none by default)."""
    with (
        Emulator(db=db, oss_root=oss_root, analyzer=SidecarAnalyzer(oss_root)) as emu,
        ImmClient(endpoint=emu.endpoint, credentials=DEFAULT_ACCESS_KEY) as client,
    ):
        deploy(client, oss_root, TWO_PEOPLE)
        seed = cluster_ids(client)[0]
        (oss_root / BUCKET / "bench").mkdir(parents=True, exist_ok=True)
        with emu.store.tx() as tx:
            template = tx.get(ClusterKey(PROJECT, DATASET, seed))
            assert template is not None
            file_template = template["Cover"]
            figure = next(f for f in file_template["Figures"] if f.get("FigureClusterId") == seed)
            for key, _ in tx.scan(Clusters(PROJECT, DATASET)):
                tx.delete(ClusterKey(PROJECT, DATASET, key))
            for key, _ in tx.scan(Files(PROJECT, DATASET)):
                tx.delete(FileKey(PROJECT, DATASET, key))
                tx.put_file_faces(PROJECT, DATASET, key, [])
            embedding = np.zeros(128, dtype=np.float32)
            for n in range(clusters):
                cluster_id = f"Cluster-{uuid.UUID(int=n + 1)}"
                files = []
                for k in range(per_cluster):
                    key = f"bench/{n:05d}-{k}{suffix}"
                    if write_object is not None:
                        write_object(oss_root / BUCKET / key)
                    uri = f"oss://{BUCKET}/{key}"
                    fig = {
                        **copy.deepcopy(figure),
                        "FigureId": str(uuid.uuid4()),
                        "FigureClusterId": cluster_id,
                        **(figure_fields or {}),
                    }
                    doc = {
                        **copy.deepcopy(file_template),
                        "URI": uri,
                        "Filename": key.rsplit("/", 1)[-1],
                        "ObjectId": uuid.uuid4().hex,
                        "Figures": [fig],
                        "FigureCount": 1,
                    }
                    doc.update(file_fields or {})
                    tx.put(FileKey(PROJECT, DATASET, uri), doc)
                    tx.put_file_faces(PROJECT, DATASET, uri, [(fig["FigureId"], cluster_id, 0.9, embedding)])
                    files.append(doc)
                cluster = copy.deepcopy(template)
                cluster.update(
                    ObjectId=cluster_id,
                    FaceCount=per_cluster,
                    ImageCount=per_cluster,
                    VideoCount=0,
                    Cover=files[0],
                    BaseImages=files,
                )
                cluster.pop("_CoverFigureId", None)
                tx.put(ClusterKey(PROJECT, DATASET, cluster_id), cluster_document(cluster))
