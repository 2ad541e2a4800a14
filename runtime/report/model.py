"""What the HTML report shows, independent of how it was gathered: plain data, built by :mod:`.collect`,
rendered by :mod:`.html`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Box:
    """A face's Boundary as fractions (0-1) of the orientation-corrected image."""

    left: float
    top: float
    width: float
    height: float


@dataclass
class Picture:
    """An image the page shows: a ``data:`` URI (embedded thumbnail) or a presigned URL, and its size in CSS
    pixels when known. ``crop`` (URL mode only) is the part of the image to show (the browser crops)."""

    src: str
    width: int | None = None
    height: int | None = None
    crop: Box | None = None


@dataclass
class Photo:
    """One member photo of a cluster: the file, its picture, and where this cluster's faces are on it."""

    uri: str
    filename: str
    picture: Picture | None
    boxes: list[Box] = field(default_factory=list)
    problem: str | None = None  # why there is no picture (not found, not an image...)


@dataclass
class CheckResult:
    check: str
    detail: str


@dataclass
class Card:
    """One figure cluster."""

    object_id: str
    name: str | None = None
    custom_id: str | None = None
    face_count: int | None = None
    image_count: int | None = None
    gender: str | None = None
    min_age: float | None = None
    max_age: float | None = None
    average_age: float | None = None
    cover: Picture | None = None
    cover_uri: str | None = None
    cover_problem: str | None = None
    photos: list[Photo] = field(default_factory=list)
    files_total: int | None = None  # how many files name the cluster (SimpleQuery TotalHits)
    failures: list[CheckResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be fetched for the report

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class CheckRow:
    id: str
    rule: str
    status: str  # passed | failed | skipped
    checked: int
    failed: int
    note: str | None = None


@dataclass
class ReportData:
    title: str
    project: str
    dataset: str
    endpoint: str
    generated: str  # RFC 3339, UTC
    passed: bool
    total_clusters: int
    checked_clusters: int
    failed_clusters: int
    checks: list[CheckRow]
    cards: list[Card]
    images: str  # how pictures are carried: "embedded" or "links"
    links_expire: str | None = None  # RFC 3339 time when presigned links stop working
    notes: list[str] = field(default_factory=list)
    shown_limit: int | None = None  # cards were capped at this many
    size_histogram: list[tuple[str, int]] = field(default_factory=list)  # (FaceCount range, clusters)
