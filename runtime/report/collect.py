"""Gather what the report shows: the verify run's results, and for each cluster shown, its figure cluster
(BatchGetFigureCluster, 100 a request; GetFigureCluster for one a batch did not return: Cover, the cover face's
Boundary, Name, CustomId, Gender, ages) and one SimpleQuery on ``Figures.FigureClusterId`` (the cluster's files,
at most ``photos_per_cluster``, with their faces), then the pictures.

Cost for n clusters shown: n/100 + n IMM requests and at most n x (photos_per_cluster + 1) object reads when
thumbnails are embedded (each a thumbnail OSS makes; none with links), ``concurrency`` of each in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from imm_faces.runtime.auth.credentials import Credentials, CredentialSource
from imm_faces.runtime.auth.oss_signing import MAX_EXPIRES_SECONDS
from imm_faces.runtime.client import AsyncImmClient
from imm_faces.runtime.errors import ConfigError, DeadlineExceededError, ImmError, TransportError
from imm_faces.runtime.http import tls_context
from imm_faces.runtime.models.figure_cluster import FigureCluster
from imm_faces.runtime.models.file import Figure, File
from imm_faces.runtime.models.query import SimpleQuery as Query
from imm_faces.runtime.operations.figure_clusters import BatchGetFigureCluster, GetFigureCluster
from imm_faces.runtime.operations.query import SimpleQuery
from imm_faces.runtime.report import DEFAULT_LINK_EXPIRY, DEFAULT_MAX_CLUSTERS, DEFAULT_PHOTOS, images
from imm_faces.runtime.report.model import Card, CheckResult, CheckRow, Photo, Picture, ReportData
from imm_faces.runtime.rules import BATCH_GET_MAX_IDS
from imm_faces.runtime.timestamps import utc_seconds
from imm_faces.runtime.verify.base import ClusterRecord, VerifyReport
from imm_faces.runtime.verify.checks import CHECKS
from imm_faces.runtime.verify.consistency import CLUSTER_FIELD

FILE_FIELDS = ["URI", "Filename", "MediaType", "Figures", "ImageWidth", "ImageHeight", "Orientation"]
SIZE_BUCKETS = ((1, 1), (2, 2), (3, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, None))
"""FaceCount ranges of the summary's histogram (None: no upper end)."""

Progress = Callable[[str, int, int | None], None]


class ReportError(ConfigError):
    """The report cannot be made as asked (the message says why and what to do): a usage error (exit 2)."""


@dataclass
class ReportOptions:
    embed: bool = True
    """Embed thumbnails (needs Pillow); otherwise link the objects with presigned URLs."""
    link_expiry: int = DEFAULT_LINK_EXPIRY
    photos_per_cluster: int = DEFAULT_PHOTOS
    max_clusters: int = DEFAULT_MAX_CLUSTERS
    concurrency: int = 8


def size_histogram(face_counts: Sequence[int | None]) -> list[tuple[str, int]]:
    rows = []
    for low, high in SIZE_BUCKETS:
        label = str(low) if low == high else (f"{low}+" if high is None else f"{low}-{high}")
        count = sum(1 for n in face_counts if n is not None and n >= low and (high is None or n <= high))
        rows.append((label, count))
    while len(rows) > 1 and rows[-1][1] == 0:  # up to the largest size present
        rows.pop()
    unknown = sum(1 for n in face_counts if n is None or n < 1)
    if unknown:
        rows.append(("unknown / 0", unknown))
    return rows


def _order(cluster: ClusterRecord) -> tuple[bool, int, str]:
    """Failed clusters first, then the largest, then by id."""
    return (not cluster.failures, -(cluster.face_count or 0), cluster.object_id)


def _box(figure: Figure) -> tuple[float, float, float, float] | None:
    b = figure.boundary
    if b is None or b.width is None or b.height is None or b.width <= 0 or b.height <= 0:
        return None
    return float(b.left or 0), float(b.top or 0), float(b.width), float(b.height)


def _faces_of(file: File | None, cluster_id: str) -> list[tuple[float, float, float, float]]:
    return [
        box for f in (file.figures if file else None) or [] if f.figure_cluster_id == cluster_id and (box := _box(f))
    ]


class _Collector:
    def __init__(
        self,
        client: AsyncImmClient,
        verify: VerifyReport,
        options: ReportOptions,
        store: images.ObjectStore,
        progress: Progress | None,
    ) -> None:
        self.client = client
        self.project = verify.outputs.project_name
        self.dataset = verify.outputs.dataset_name
        self.options = options
        self.store = store
        self.imm_gate = asyncio.Semaphore(max(1, options.concurrency))
        self.oss_gate = asyncio.Semaphore(max(1, options.concurrency))
        self.progress = progress
        self.done = 0
        self.clusters: dict[str, FigureCluster] = {}

    async def fetch_clusters(self, ids: list[str]) -> None:
        """The shown clusters, :data:`BATCH_GET_MAX_IDS` a request (BatchGetFigureCluster returns the Cover with
        its faces, which is all a card needs); one that fails leaves its clusters to :meth:`card`."""

        async def batch(chunk: list[str]) -> None:
            try:
                async with self.imm_gate:
                    got = await self.client.call(
                        BatchGetFigureCluster, project_name=self.project, dataset_name=self.dataset, object_ids=chunk
                    )
            except (ImmError, DeadlineExceededError, TransportError):
                return
            wanted = set(chunk)
            self.clusters.update({c.object_id: c for c in got.figure_clusters or [] if c.object_id in wanted})

        await asyncio.gather(*(batch(ids[i : i + BATCH_GET_MAX_IDS]) for i in range(0, len(ids), BATCH_GET_MAX_IDS)))

    async def credentials(self) -> Credentials:
        source = self.store.credentials
        return await asyncio.to_thread(source.get) if source.due() else source.get()

    async def card(self, record: ClusterRecord, total: int) -> Card:
        card = Card(
            record.object_id,
            name=record.name,
            face_count=record.face_count,
            image_count=record.image_count,
            failures=[CheckResult(f.check, f.detail) for f in record.failures],
        )
        cluster: FigureCluster | None = self.clusters.get(record.object_id)
        files: list[File] = []
        if cluster is None:  # not in a BatchGetFigureCluster answer: asked alone, which says why when it fails
            try:
                async with self.imm_gate:
                    got = await self.client.call(
                        GetFigureCluster,
                        project_name=self.project,
                        dataset_name=self.dataset,
                        object_id=record.object_id,
                    )
                cluster = got.figure_cluster
            except ImmError as exc:
                card.problems.append(f"GetFigureCluster: {exc.code}: {exc.message}")
            except (DeadlineExceededError, TransportError) as exc:  # the page is still written, saying so
                card.problems.append(f"GetFigureCluster: {exc}")
        try:
            async with self.imm_gate:
                page = await self.client.call(
                    SimpleQuery,
                    project_name=self.project,
                    dataset_name=self.dataset,
                    query=Query(field=CLUSTER_FIELD, operation="eq", value=record.object_id),
                    with_fields=FILE_FIELDS,
                    max_results=self.options.photos_per_cluster,
                )
            files = page.files or []
            card.files_total = page.total_hits
        except ImmError as exc:
            card.problems.append(f"SimpleQuery: {exc.code}: {exc.message}")
        except (DeadlineExceededError, TransportError) as exc:
            card.problems.append(f"SimpleQuery: {exc}")
        if cluster is not None:
            self.describe(card, cluster)
        await self.pictures(card, cluster.cover if cluster else None, files[: self.options.photos_per_cluster])
        self.done += 1
        if self.progress:
            self.progress("report", self.done, total)
        return card

    @staticmethod
    def describe(card: Card, cluster: FigureCluster) -> None:
        card.name = cluster.name or card.name
        card.custom_id = cluster.custom_id
        card.face_count = cluster.face_count if cluster.face_count is not None else card.face_count
        card.image_count = cluster.image_count if cluster.image_count is not None else card.image_count
        card.gender = cluster.gender
        card.min_age, card.max_age, card.average_age = cluster.min_age, cluster.max_age, cluster.average_age

    async def pictures(self, card: Card, cover: File | None, files: list[File]) -> None:
        cover_uri = cover.uri if cover else None
        card.cover_uri = cover_uri
        cover_faces = _faces_of(cover, card.object_id)
        if cover is not None and not cover_faces:  # the cover names another cluster's face only: show one anyway
            cover_faces = [box for f in cover.figures or [] if (box := _box(f))][:1]
        face = cover_faces[0] if cover_faces else None
        if cover_uri and face is None:
            card.cover_problem = "the Cover holds no face Boundary"
        photos = [Photo(f.uri or "", f.filename or (f.uri or "").rsplit("/", 1)[-1], None) for f in files if f.uri]
        boxes = {f.uri: _faces_of(f, card.object_id) for f in files if f.uri}
        creds = await self.credentials()
        if not self.options.embed:
            self.link(card, cover, face, photos, files, boxes, creds)
            return
        wanted: dict[str, tuple[tuple[float, float, float, float] | None, bool]] = {p.uri: (None, True) for p in photos}
        if cover_uri and face is not None:
            wanted[cover_uri] = (face, cover_uri in wanted)
        sizes = {f.uri: (f.image_width, f.image_height) for f in [*files, *([cover] if cover else [])] if f.uri}
        made = await asyncio.gather(
            *(self.thumbnails(uri, f, photo, creds, sizes.get(uri)) for uri, (f, photo) in wanted.items())
        )
        results = dict(zip(wanted, made, strict=True))
        if cover_uri and face is not None:
            got, problem = results[cover_uri]
            card.cover, card.cover_problem = (got.cover if got else None), problem
        for photo in photos:
            got, problem = results[photo.uri]
            photo.problem = problem
            if got is not None:
                photo.picture = got.photo
                photo.boxes = [images.fraction_box(*b, got.width, got.height) for b in boxes[photo.uri]]
        card.photos = photos

    async def thumbnails(
        self,
        uri: str,
        face: tuple[float, float, float, float] | None,
        photo: bool,
        creds: Credentials,
        size: tuple[int | None, int | None] | None,
    ) -> tuple[images.Thumbnails | None, str | None]:
        """Made by OSS when the upright size is known; else, or when OSS cannot, here from the whole photo
        (with Pillow). (thumbnails, None) or (None, why not)."""
        async with self.oss_gate:
            if size and size[0] and size[1]:
                try:
                    return await images.processed_thumbnails(
                        self.store, uri, creds, (size[0], size[1]), face, photo
                    ), None
                except images.ObjectReadError as exc:
                    if not images.pillow_available():
                        return (
                            None,
                            f"{exc.reason} (OSS made no thumbnail; with pip install 'imm-faces[report]' "
                            "it is made here)",
                        )
            elif not images.pillow_available():
                return None, "its size is not in its metadata; pip install 'imm-faces[report]' to read it"
            try:
                data = await self.store.read(uri, creds)
            except images.ObjectReadError as exc:
                return None, exc.reason
            try:
                return await asyncio.to_thread(images.make_thumbnails, data, face, photo), None
            except ValueError as exc:
                return None, str(exc)

    def link(
        self,
        card: Card,
        cover: File | None,
        face: tuple[float, float, float, float] | None,
        photos: list[Photo],
        files: list[File],
        boxes: dict[str, list[tuple[float, float, float, float]]],
        creds: Credentials,
    ) -> None:
        """Presigned URLs; the browser crops the cover (object-fit by CSS) from the upright size in the file's
        metadata (ImageWidth/ImageHeight), and places the face boxes by it."""
        if cover is not None and cover.uri:
            w, h = cover.image_width, cover.image_height
            card.cover = Picture(
                self.store.url(cover.uri, creds), w, h, images.link_crop(face, w, h) if face and w and h else None
            )
        for photo, file in zip(photos, [f for f in files if f.uri], strict=True):
            w, h = file.image_width, file.image_height
            photo.picture = Picture(self.store.url(photo.uri, creds), w, h)
            if w and h:
                photo.boxes = [images.fraction_box(*b, w, h) for b in boxes[photo.uri]]
        card.photos = photos


def _check_rows(verify: VerifyReport) -> list[CheckRow]:
    rows = []
    for record in verify.checks.values():
        note = record.skipped if record.status == "skipped" else ("; ".join(record.notes) or None)
        rows.append(
            CheckRow(record.id, CHECKS.get(record.id, ""), record.status, record.checked, len(record.failures), note)
        )
    return rows


async def collect(
    client: AsyncImmClient,
    verify: VerifyReport,
    options: ReportOptions,
    *,
    credentials: CredentialSource,
    region: str,
    oss_endpoint: str | None,
    progress: Progress | None = None,
) -> ReportData:
    """Everything the page shows. Raises :class:`ReportError` when it cannot be made as asked."""
    if not 1 <= options.link_expiry <= MAX_EXPIRES_SECONDS:
        raise ReportError(f"the link expiry must be 1-{MAX_EXPIRES_SECONDS} seconds (OSS's limit for presigned URLs)")
    source_creds = await asyncio.to_thread(credentials.get) if credentials.due() else credentials.get()
    if not options.embed and source_creds.security_token:
        raise ReportError(
            "the credentials are temporary (STS): a presigned link would carry the security token into the page; "
            "embed thumbnails instead (--embed)"
        )
    records: list[ClusterRecord] = sorted(verify.clusters.values(), key=_order)
    shown = records[: options.max_clusters]
    async with httpx.AsyncClient(timeout=60.0, trust_env=False, verify=tls_context()) as http:
        store = images.ObjectStore(credentials, region, endpoint=oss_endpoint, expires=options.link_expiry, http=http)
        collector = _Collector(client, verify, options, store, progress)
        await collector.fetch_clusters([r.object_id for r in shown])
        cards = list(await asyncio.gather(*(collector.card(r, len(shown)) for r in shown)))
    now = datetime.now(UTC)
    notes = []
    if len(records) > len(shown):
        notes.append(
            f"{len(shown)} of {len(records)} checked clusters are shown (failed ones first, then the largest)."
        )
    return ReportData(
        title=f"Face clusters of {verify.outputs.project_name}/{verify.outputs.dataset_name}",
        project=verify.outputs.project_name,
        dataset=verify.outputs.dataset_name,
        endpoint=verify.endpoint,
        generated=utc_seconds(now),
        passed=verify.passed,
        total_clusters=verify.total_clusters,
        checked_clusters=len(records),
        failed_clusters=sum(1 for r in records if r.failures),
        checks=_check_rows(verify),
        cards=cards,
        images="embedded" if options.embed else "links",
        links_expire=None if options.embed else utc_seconds(now + timedelta(seconds=options.link_expiry)),
        notes=notes,
        shown_limit=options.max_clusters if len(records) > len(shown) else None,
        size_histogram=size_histogram([r.face_count for r in records]),
    )
