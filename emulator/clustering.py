"""Incremental face clustering: new faces join the nearest cluster within a distance, or start one.

Faces are 128-d embeddings compared by Euclidean distance. A face joins the cluster whose centroid (mean
embedding) is nearest, when that distance is below :data:`DEFAULT_THRESHOLD`; otherwise it starts a new
cluster. Existing clusters keep their ids; only new faces are assigned, so a clustering task is incremental.

Memory stays O(chunk x clusters): new faces are compared with the centroids a chunk at a time, never all
faces with all faces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

DEFAULT_THRESHOLD = 0.5
"""Distance under which two dlib face embeddings are taken as the same person (dlib's guide uses 0.6;
photos of one person measured at most 0.44 apart and of different people at least 0.63)."""

CHUNK = 1024


class Centroids:
    """Running cluster centres: ``sums[i] / counts[i]`` is the centroid of cluster ``ids[i]``.

    Storage grows by doubling, so starting a cluster is amortised O(d), not a copy of every centre.
    """

    def __init__(self, ids: list[str], sums: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]) -> None:
        self.ids = ids
        self._sums = sums
        self._counts = counts

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

    @property
    def dim(self) -> int:
        return int(self._sums.shape[1]) if self.ids else 0

    def means(self, start: int = 0) -> npt.NDArray[np.float64]:
        n = len(self.ids)
        return self._sums[start:n] / self._counts[start:n, None]

    def add(self, index: int, vec: npt.NDArray[np.float64]) -> None:
        self._sums[index] += vec
        self._counts[index] += 1

    def start(self, cluster_id: str, vec: npt.NDArray[np.float64]) -> int:
        n = len(self.ids)
        if n == len(self._counts) or self._sums.shape[1] != len(vec):
            capacity = max(16, 2 * n)
            sums = np.zeros((capacity, len(vec)))
            counts = np.zeros(capacity, dtype=np.int64)
            if n:
                sums[:n], counts[:n] = self._sums[:n], self._counts[:n]
            self._sums, self._counts = sums, counts
        self._sums[n], self._counts[n] = vec, 1
        self.ids.append(cluster_id)
        return n


def assign(
    embeddings: npt.NDArray[np.float32],
    centroids: Centroids,
    new_id: Callable[[], str],
    threshold: float = DEFAULT_THRESHOLD,
) -> list[str]:
    """Assign each new face (rows of ``embeddings``, in arrival order) a cluster id; update ``centroids``.

    Per chunk of new faces: one (chunk x clusters) distance matrix against the centroids as they were when
    the chunk began, then, face by face, a comparison with the clusters started inside the chunk. Time is
    O(faces x clusters x d); memory O(CHUNK x clusters), never faces x faces.
    """
    labels: list[str] = []
    for begin in range(0, len(embeddings), CHUNK):
        chunk = embeddings[begin : begin + CHUNK].astype(np.float64)
        known = len(centroids.ids)
        if known and centroids.dim != chunk.shape[1]:
            raise ValueError("embedding dimension differs from the existing clusters'")
        nearest = np.zeros(len(chunk), dtype=np.int64)
        best = np.full(len(chunk), np.inf)
        if known:
            means = centroids.means()
            # squared distances via |a|^2 - 2ab + |b|^2: one (chunk x clusters) matrix
            d2 = (chunk**2).sum(1)[:, None] - 2 * chunk @ means.T + (means**2).sum(1)[None, :]
            nearest = d2.argmin(1)
            best = np.sqrt(np.maximum(d2[np.arange(len(chunk)), nearest], 0))
        for i, vec in enumerate(chunk):
            target: int | None = int(nearest[i]) if best[i] < threshold else None
            if len(centroids.ids) > known:  # clusters born inside this chunk are not in the matrix above
                fresh = centroids.means(known)
                dist = np.sqrt(((fresh - vec) ** 2).sum(1))
                j = int(dist.argmin())
                if dist[j] < threshold and dist[j] < best[i]:
                    target = known + j
            if target is None:
                target = centroids.start(new_id(), vec)
            else:
                centroids.add(target, vec)
            labels.append(centroids.ids[target])
    return labels
