"""The official SDK's sequential loop as a user would write it: QueryFigureClusters page by page (100 a page),
then GetFigureCluster for each cluster, one at a time, checking that each has its id and at least one face.

As a script, the whole process that ``benchmarks/verify.py`` measures beside ``imm-faces verify`` (interpreter
start-up and imports included, as CI pays them); it imports nothing of imm-faces:

    python benchmarks/sdk_loop.py ENDPOINT PROJECT DATASET    # keys from ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET

``benchmarks/verify.py`` also runs its functions in its own process (the in-process figures).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from alibabacloud_imm20200930 import models
from alibabacloud_imm20200930.client import Client
from alibabacloud_tea_openapi.models import Config


def client_for(endpoint: str, key_id: str, secret: str) -> Any:
    host = endpoint.removeprefix("http://").rstrip("/")
    return Client(Config(endpoint=host, protocol="http", access_key_id=key_id, access_key_secret=secret))


def cluster_ids(client: Any, project: str, dataset: str) -> list[str]:
    """Every figure cluster's id, QueryFigureClusters page by page."""
    ids: list[str] = []
    token = None
    while True:
        request = models.QueryFigureClustersRequest(
            project_name=project, dataset_name=dataset, max_results=100, next_token=token
        )
        body = client.query_figure_clusters(request).body
        ids += [c.object_id for c in body.figure_clusters or []]
        token = body.next_token
        if not token:
            return ids


def cluster_ok(client: Any, project: str, dataset: str, object_id: str) -> bool:
    """GetFigureCluster: the cluster is there, with its id and at least one face."""
    request = models.GetFigureClusterRequest(project_name=project, dataset_name=dataset, object_id=object_id)
    cluster = client.get_figure_cluster(request).body.figure_cluster
    return bool(cluster and cluster.object_id == object_id and (cluster.face_count or 0) >= 1)


def main(endpoint: str, project: str, dataset: str) -> int:
    client = client_for(
        endpoint, os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
    )
    ids = cluster_ids(client, project, dataset)
    good = sum(cluster_ok(client, project, dataset, object_id) for object_id in ids)
    print(f"{good} of {len(ids)} clusters checked")
    return 0 if good == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
