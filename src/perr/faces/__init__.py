"""Faces, shared by every stage: boxes, detectors (one registry), dlib identity descriptors, tracks."""

from perr.faces.box import FaceBox, iou
from perr.faces.clustering import cluster_identities
from perr.faces.detectors import FACE_DETECTORS, FaceDetector, make_face_detector
from perr.faces.identity import (
    SAME_PERSON_DISTANCE,
    FaceEmbedder,
    crop_face,
    default_embedder,
    embed_faces,
    embed_image,
    face_model_dir,
    mean_descriptors,
)
from perr.faces.persons import link_bodies
from perr.faces.tracker import CROPS_PER_TRACK, FaceTracker, Track, TrackedFace, embed_tracks

__all__ = [
    "CROPS_PER_TRACK",
    "FACE_DETECTORS",
    "SAME_PERSON_DISTANCE",
    "FaceBox",
    "FaceDetector",
    "FaceEmbedder",
    "FaceTracker",
    "Track",
    "TrackedFace",
    "cluster_identities",
    "crop_face",
    "default_embedder",
    "embed_faces",
    "embed_image",
    "embed_tracks",
    "face_model_dir",
    "iou",
    "link_bodies",
    "make_face_detector",
    "mean_descriptors",
]
