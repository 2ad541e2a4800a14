"""Incremental face clustering: new faces join the nearest cluster within a distance, or start one.

Faces are 128-d embeddings compared by Euclidean distance. A face joins the cluster whose centroid (mean
embedding) is nearest, when that distance is below :data:`DEFAULT_THRESHOLD`; otherwise it starts a new
cluster. Existing clusters keep their ids; only new faces are assigned, so a clustering task is incremental.

Memory stays O(chunk x clusters): new faces are compared with the centroids a chunk at a time, never all
faces with all faces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DEFAULT_THRESHOLD = 0.5
"""Distance under which two dlib face embeddings are taken as the same person (dlib's guide uses 0.6;
photos of one person measured at most 0.44 apart and of different people at least 0.63)."""

CHUNK = 1024


@dataclass
class Centroids:
    """Running cluster centres: ``sums[i] / counts[i]`` is the centroid of cluster ``ids[i]``."""

    ids: list[str]
    sums: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]

    @classmethod
    def from_members(cls, cluster_ids: list[str], embeddings: npt.NDArray[np.float32]) -> Centroids:
        ids = sorted(set(cluster_ids))
        index = {cid: i for i, cid in enumerate(ids)}
        dim = embeddings.shape[1] if embeddings.size else 0
        sums = np.zeros((len(ids), dim))
        counts = np.zeros(len(ids), dtype=np.int64)
        if ids:
            rows = np.array([index[c] for c in cluster_ids])
            np.add.at(sums, rows, embeddings)
            np.add.at(counts, rows, 1)
        return cls(ids, sums, counts)

    def means(self) -> npt.NDArray[np.float64]:
        return self.sums / np.maximum(self.counts, 1)[:, None]


def assign(
    embeddings: npt.NDArray[np.float32],
    centroids: Centroids,
    new_id: Callable[[], str],
    threshold: float = DEFAULT_THRESHOLD,
) -> list[str]:
    """Assign each new face (rows of ``embeddings``, in arrival order) a cluster id; update ``centroids``."""
    labels: list[str] = []
    for start in range(0, len(embeddings), CHUNK):
        chunk = embeddings[start : start + CHUNK].astype(np.float64)
        known = len(centroids.ids)
        if known and centroids.sums.shape[1] != chunk.shape[1]:
            raise ValueError("embedding dimension differs from the existing clusters'")
        if known:
            means = centroids.means()
            # squared distances via |a|^2 - 2ab + |b|^2: one (chunk x clusters) matrix
            d2 = (chunk**2).sum(1)[:, None] - 2 * chunk @ means.T + (means**2).sum(1)[None, :]
            nearest = d2.argmin(1)
            best = np.sqrt(np.maximum(d2[np.arange(len(chunk)), nearest], 0))
        for i, vec in enumerate(chunk):
            target: int | None = None
            if known and best[i] < threshold:
                target = int(nearest[i])
            # clusters born inside this chunk are not in the matrix above: compare with them directly
            if len(centroids.ids) > known:
                fresh = centroids.means()[known:]
                dist = np.sqrt(((fresh - vec) ** 2).sum(1))
                j = int(dist.argmin())
                if dist[j] < threshold and (target is None or dist[j] < best[i]):
                    target = known + j
            if target is None:
                centroids.ids.append(new_id())
                centroids.sums = np.vstack([centroids.sums.reshape(-1, len(vec)), vec[None, :]])
                centroids.counts = np.append(centroids.counts, 1)
                target = len(centroids.ids) - 1
            else:
                centroids.sums[target] += vec
                centroids.counts[target] += 1
            labels.append(centroids.ids[target])
    return labels
