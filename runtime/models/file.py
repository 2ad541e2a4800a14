"""IMM's ``File`` metadata and the objects nested in it (faces, labels, streams...).

A ``File`` is what GetFileMeta returns and what a figure cluster's ``Cover`` and ``BaseImages`` hold.
The field list is the union of ``alibabacloud-imm20200930`` 5.0.3's ``File`` model and the fields of the
GetFigureCluster reference sample (which shows a few the SDK does not yet know, e.g. ``SmartClusters``).
"""

from typing import Any

from imm_faces.runtime.models.base import Number, WireModel, WireView


class PointInt64(WireModel):
    x: int | None = None
    y: int | None = None


class Boundary(WireModel):
    """A rectangle in pixels of the (orientation-corrected) image, with an optional polygon."""

    left: int | None = None
    top: int | None = None
    width: int | None = None
    height: int | None = None
    polygon: list[PointInt64] | None = None


class HeadPose(WireModel):
    """Head orientation in degrees."""

    pitch: Number | None = None
    roll: Number | None = None
    yaw: Number | None = None


class Figure(WireModel):
    """One detected face ("figure" in IMM's words) and its attributes."""

    figure_id: str | None = None
    figure_type: str | None = None
    figure_confidence: Number | None = None
    figure_cluster_id: str | None = None
    figure_cluster_confidence: Number | None = None
    boundary: Boundary | None = None
    head_pose: HeadPose | None = None
    age: int | None = None
    age_sd: Number | None = None
    gender: str | None = None
    gender_confidence: Number | None = None
    emotion: str | None = None
    emotion_confidence: Number | None = None
    attractive: Number | None = None
    face_quality: Number | None = None
    sharpness: Number | None = None
    beard: str | None = None
    beard_confidence: Number | None = None
    glasses: str | None = None
    glasses_confidence: Number | None = None
    hat: str | None = None
    hat_confidence: Number | None = None
    mask: str | None = None
    mask_confidence: Number | None = None
    mouth: str | None = None
    mouth_confidence: Number | None = None


class Clip(WireModel):
    time_range: list[int] | None = None


class Label(WireModel):
    label_name: str | None = None
    label_alias: str | None = None
    parent_label_name: str | None = None
    language: str | None = None
    label_level: int | None = None
    label_confidence: Number | None = None
    centric_score: Number | None = None
    clips: list[Clip] | None = None


class Address(WireModel):
    address_line: str | None = None
    country: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    township: str | None = None
    language: str | None = None


class ImageScore(WireModel):
    overall_quality_score: Number | None = None


class CroppingSuggestion(WireModel):
    aspect_ratio: str | None = None
    confidence: Number | None = None
    boundary: Boundary | None = None


class OCRContents(WireModel):
    contents: str | None = None
    confidence: Number | None = None
    language: str | None = None
    boundary: Boundary | None = None


class ImageInsight(WireModel):
    caption: str | None = None
    description: str | None = None
    multilingual_content: dict[str, Any] | None = None


class Insights(WireModel):
    image: ImageInsight | None = None
    video: ImageInsight | None = None


class ElementContent(WireModel):
    type: str | None = None
    content: str | None = None
    url: str | None = None
    time_range: list[int] | None = None


class ElementRelation(WireModel):
    type: str | None = None
    object_id: str | None = None


class Element(WireModel):
    object_id: str | None = None
    element_type: str | None = None
    semantic_similarity: Number | None = None
    element_contents: list[ElementContent] | None = None
    element_relations: list[ElementRelation] | None = None


class SceneElement(WireModel):
    time_range: list[int] | None = None
    frame_times: list[int] | None = None
    video_stream_index: int | None = None
    labels: list[Label] | None = None


class SmartCluster(WireModel):
    smart_cluster_id: str | None = None
    similarity: Number | None = None


class Image(WireModel):
    """An embedded picture, e.g. an audio file's cover art."""

    image_width: int | None = None
    image_height: int | None = None
    exif: str | None = None
    image_score: ImageScore | None = None
    cropping_suggestions: list[CroppingSuggestion] | None = None
    ocr_contents: list[OCRContents] | None = None


class _Stream(WireModel):
    index: int | None = None
    language: str | None = None
    codec_name: str | None = None
    codec_long_name: str | None = None
    codec_tag: str | None = None
    codec_tag_string: str | None = None
    codec_time_base: str | None = None
    time_base: str | None = None
    start_time: Number | None = None
    duration: Number | None = None
    bitrate: int | None = None
    frame_count: int | None = None


class VideoStream(_Stream):
    width: int | None = None
    height: int | None = None
    profile: str | None = None
    level: int | None = None
    has_b_frames: int | None = None
    sample_aspect_ratio: str | None = None
    display_aspect_ratio: str | None = None
    pixel_format: str | None = None
    frame_rate: str | None = None
    average_frame_rate: str | None = None
    rotate: str | None = None
    bit_depth: int | None = None
    color_space: str | None = None
    color_range: str | None = None
    color_transfer: str | None = None
    color_primaries: str | None = None


class AudioStream(_Stream):
    sample_format: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    channel_layout: str | None = None
    lyric: str | None = None


class SubtitleStream(_Stream):
    content: str | None = None
    width: int | None = None
    height: int | None = None


class File(WireModel):
    """An indexed file's metadata (GetFileMeta; a figure cluster's Cover and BaseImages)."""

    owner_id: str | None = None
    project_name: str | None = None
    dataset_name: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    object_status: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    uri: str | None = None
    ossuri: str | None = None
    filename: str | None = None
    media_type: str | None = None
    content_type: str | None = None
    size: int | None = None
    file_hash: str | None = None
    file_status: str | None = None
    file_create_time: str | None = None
    file_modified_time: str | None = None
    file_access_time: str | None = None
    produce_time: str | None = None
    lat_long: str | None = None
    timezone: str | None = None
    language: str | None = None
    addresses: list[Address] | None = None
    travel_cluster_id: str | None = None
    orientation: int | None = None
    figures: list[Figure] | None = None
    figure_count: int | None = None
    labels: list[Label] | None = None
    title: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    exif: str | None = None
    image_score: ImageScore | None = None
    cropping_suggestions: list[CroppingSuggestion] | None = None
    ocr_contents: list[OCRContents] | None = None
    ocr_texts: str | None = None
    insights: Insights | None = None
    video_width: int | None = None
    video_height: int | None = None
    video_streams: list[VideoStream] | None = None
    subtitles: list[SubtitleStream] | None = None
    audio_streams: list[AudioStream] | None = None
    audio_covers: list[Image] | None = None
    artist: str | None = None
    album_artist: str | None = None
    album: str | None = None
    composer: str | None = None
    performer: str | None = None
    page_count: int | None = None
    e_tag: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None
    content_encoding: str | None = None
    content_language: str | None = None
    content_md5: str | None = None
    access_control_allow_origin: str | None = None
    access_control_request_method: str | None = None
    server_side_encryption: str | None = None
    server_side_encryption_key_id: str | None = None
    server_side_data_encryption: str | None = None
    server_side_encryption_customer_algorithm: str | None = None
    oss_storage_class: str | None = None
    oss_crc64: str | None = None
    object_acl: str | None = None
    oss_user_meta: dict[str, Any] | None = None
    oss_tagging: dict[str, Any] | None = None
    oss_tagging_count: int | None = None
    oss_expiration: str | None = None
    oss_version_id: str | None = None
    oss_delete_marker: str | None = None
    oss_object_type: str | None = None
    custom_id: str | None = None
    custom_labels: dict[str, Any] | None = None
    stream_count: int | None = None
    program_count: int | None = None
    format_name: str | None = None
    format_long_name: str | None = None
    start_time: Number | None = None
    bitrate: int | None = None
    duration: Number | None = None
    semantic_similarity: Number | None = None
    semantic_types: list[str] | None = None
    elements: list[Element] | None = None
    scene_elements: list[SceneElement] | None = None
    smart_clusters: list[SmartCluster] | None = None
    reason: str | None = None
    sequence_number: int | None = None
    cluster_status: dict[str, Any] | None = None
    cluster_modifications: dict[str, Any] | None = None


class FigureClusterRef(WireView):
    """Of a face, the figure cluster it names."""

    figure_cluster_id: str | None = None


class FileFaces(WireView):
    """What ``imm-faces verify`` reads of a file SimpleQuery finds (it asks for URI, MediaType and Figures): the
    file's URI and media type, and of each face the cluster it names. Every other field (a face's boundary, pose,
    attributes...) is skipped while parsing, and the whole :class:`File` model is never built for it."""

    uri: str | None = None
    media_type: str | None = None
    figures: list[FigureClusterRef] | None = None
