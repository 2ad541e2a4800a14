"""SearchImageFigureCluster's search, run on the request path: the faces of one image matched against the
dataset's figure clusters."""

from __future__ import annotations

import logging

import numpy as np

from imm_faces.emulator.analysis import FACE_ANALYSIS_UNAVAILABLE, Analyzer
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
        to. Inferred (IMM does not publish how): a face belongs to the cluster of smallest root-mean-square
        distance to its members when that is under the clustering threshold (the rule a clustering task uses
        to let a face join a cluster); Similarity is 1 - that distance, clamped to 0-1. Faces that belong to
        no cluster are not listed."""
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
        rms = np.sqrt(stats.rms2(np.stack([np.asarray(f.embedding, np.float64) for f in faces])))
        out: list[FigureClusterMatch] = []
        for face, row in zip(faces, rms, strict=True):
            best = int(np.argmin(row))
            if row[best] < self.threshold:
                left, top, width, height = face.boundary
                out.append(
                    FigureClusterMatch(
                        boundary=Boundary(left=left, top=top, width=width, height=height),
                        cluster_id=stats.ids[best],
                        similarity=round(max(0.0, min(1.0, 1.0 - float(row[best]))), 4),
                    )
                )
        return out
