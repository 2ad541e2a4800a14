"""SearchImageFigureCluster's search, run on the request path: the faces of one image matched against the
dataset's figure clusters."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from imm_faces.emulator.analysis import FACE_ANALYSIS_UNAVAILABLE, Analyzer
from imm_faces.emulator.clustering import ClusterStats, Linkage
from imm_faces.emulator.errors import invalid
from imm_faces.emulator.figures import cluster_stats
from imm_faces.emulator.images import ImageLimitError
from imm_faces.emulator.indexer import ObjectReads
from imm_faces.emulator.ram import AccessDeniedError
from imm_faces.emulator.store import Store
from imm_faces.runtime.models.file import Boundary
from imm_faces.runtime.operations.figure_clusters import FigureClusterMatch
from imm_faces.runtime.rules import IMG_MAX_SOURCE_BYTES

log = logging.getLogger("imm_faces.emulator")


class ImageSearch:
    def __init__(self, store: Store, objects: ObjectReads, analyzer: Analyzer, threshold: float) -> None:
        self.store = store
        self.objects = objects
        self.analyzer = analyzer
        self.threshold = threshold

    def search(self, project: str, dataset: str, uri: str) -> list[FigureClusterMatch]:
        """SearchImageFigureCluster: the faces found in an image and, for each, the figure cluster it belongs
        to. Inferred (IMM does not publish how): a face belongs to the cluster a clustering task would let it
        join (:func:`matches`); Similarity is 1 - its root-mean-square distance to the cluster's members,
        clamped to 0-1. Faces that belong to no cluster are not listed."""
        try:
            self.objects.check(project, "oss:GetObject", uri)
            data, whole, obj = self.objects.read(uri)
        except AccessDeniedError as exc:
            raise invalid(f"The parameter SourceURI is invalid: the service role may not read it: {exc}") from None
        except (ValueError, OSError):
            raise invalid(f"The parameter SourceURI is invalid: {uri!r} is not a readable OSS object") from None
        if not self.analyzer.faces_available:
            raise invalid(FACE_ANALYSIS_UNAVAILABLE)
        if not whole:
            raise invalid(
                f"The parameter SourceURI is invalid: {uri!r} is larger than {IMG_MAX_SOURCE_BYTES // (1024 * 1024)} MB"
            )
        try:
            faces = self.analyzer.analyze(data, obj.name).faces
        except ImageLimitError as exc:
            raise invalid(f"The parameter SourceURI is invalid: {uri!r}: {exc}") from None
        except Exception:  # an object the analyzer cannot read is the caller's input, not a server fault
            log.exception("SearchImageFigureCluster %s: analysis failed", uri)
            raise invalid(f"The parameter SourceURI is invalid: {uri!r} is not an image that can be analysed") from None
        if not faces:
            return []
        with self.store.snapshot() as tx:
            stats = cluster_stats(tx, project, dataset)  # a batch of members at a time: memory stays bounded
        if not stats.ids:
            return []
        embeddings = np.stack([np.asarray(f.embedding, np.float64) for f in faces])
        out: list[FigureClusterMatch] = []
        for i, cluster_id, rms in matches(stats, embeddings, self.threshold):
            left, top, width, height = faces[i].boundary
            out.append(
                FigureClusterMatch(
                    boundary=Boundary(left=left, top=top, width=width, height=height),
                    cluster_id=cluster_id,
                    similarity=round(max(0.0, min(1.0, 1.0 - rms)), 4),
                )
            )
        return out


def matches(stats: ClusterStats, embeddings: npt.NDArray[np.float64], threshold: float) -> list[tuple[int, str, float]]:
    """(face row, cluster id, rms distance) of each face that belongs to a cluster: the cluster a clustering task
    with this threshold would let it join at the end of a task (:meth:`Linkage.choose`, each cluster's own
    limit: a widely photographed person's is wider), with no waiting face to compete with."""
    rule = Linkage.scaled(threshold)
    rms2 = stats.rms2(embeddings)
    best, joins = rule.choose(rms2, stats.limits2(rule), np.full(len(embeddings), np.inf))
    return [(int(i), stats.ids[int(best[i])], float(np.sqrt(rms2[i, best[i]]))) for i in np.flatnonzero(joins)]
