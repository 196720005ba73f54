"""The one video reader of perr (see :mod:`perr.video.reader`), its clock, and clip media sources."""

from perr.video.clock import REORDER_DEPTH, PtsRepair, clock_origin, fit_size, is_vfr
from perr.video.files import IMAGE_EXTS, VIDEO_EXTS, iter_video_files
from perr.video.pyav import open_container
from perr.video.reader import VideoReader, probe, read_audio, read_frames
from perr.video.source import (
    SourceError,
    list_frame_files,
    source_audio,
    source_duration,
    source_frame_size,
    source_frames_at,
)
from perr.video.types import Frame, RawFrame, SubtitleStreamInfo, VideoBackend, VideoError, VideoInfo

__all__ = [
    "IMAGE_EXTS",
    "REORDER_DEPTH",
    "VIDEO_EXTS",
    "Frame",
    "PtsRepair",
    "RawFrame",
    "SourceError",
    "SubtitleStreamInfo",
    "VideoBackend",
    "VideoError",
    "VideoInfo",
    "VideoReader",
    "clock_origin",
    "fit_size",
    "is_vfr",
    "iter_video_files",
    "list_frame_files",
    "open_container",
    "probe",
    "read_audio",
    "read_frames",
    "source_audio",
    "source_duration",
    "source_frame_size",
    "source_frames_at",
]
