"""The official SDK's sequential loop as a user would write it, run as its own process by ``benchmarks/verify.py``
(whole-process figures: interpreter start-up and imports included, as CI pays them):

    python benchmarks/sdk_loop.py ENDPOINT PROJECT DATASET

Pages QueryFigureClusters (100 a page), then GetFigureCluster for each cluster, one at a time; checks each has
its id and at least one face; prints how many clusters it checked. Imports nothing of imm-faces.
"""

from __future__ import annotations

import os
import sys

from alibabacloud_imm20200930 import models
from alibabacloud_imm20200930.client import Client
from alibabacloud_tea_openapi.models import Config


def main(endpoint: str, project: str, dataset: str) -> int:
    host = endpoint.removeprefix("http://").rstrip("/")
    client = Client(Config(endpoint=host, protocol="http", access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                           access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]))  # fmt: skip
    ids: list[str] = []
    token = None
    while True:
        request = models.QueryFigureClustersRequest(project_name=project, dataset_name=dataset, max_results=100,
                                                    next_token=token)  # fmt: skip
        body = client.query_figure_clusters(request).body
        ids += [c.object_id for c in body.figure_clusters or []]
        token = body.next_token
        if not token:
            break
    good = 0
    for object_id in ids:
        get = models.GetFigureClusterRequest(project_name=project, dataset_name=dataset, object_id=object_id)
        cluster = client.get_figure_cluster(get).body.figure_cluster
        good += bool(cluster and cluster.object_id == object_id and (cluster.face_count or 0) >= 1)
    print(f"{good} of {len(ids)} clusters checked")
    return 0 if good == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
