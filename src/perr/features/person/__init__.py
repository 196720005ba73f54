"""The parts of the person features (the extractor itself is :mod:`perr.features.extractors.person`)."""

from perr.features.person.analysis import PersonAnalysis
from perr.features.person.expression import FER_EMOTIONS, ExpressionModel, fer_crop, fer_model_path
from perr.features.person.layout import N_POSE, PERSON_DIM, PERSON_LAYOUT, person_slices, relation_features
from perr.features.person.pose import BodyPose
from perr.features.person.roles import TRACK_IOU, RoleAssigner, box_at, link_detections, load_box_track

__all__ = [
    "FER_EMOTIONS",
    "N_POSE",
    "PERSON_DIM",
    "PERSON_LAYOUT",
    "TRACK_IOU",
    "BodyPose",
    "ExpressionModel",
    "PersonAnalysis",
    "RoleAssigner",
    "box_at",
    "fer_crop",
    "fer_model_path",
    "link_detections",
    "load_box_track",
    "person_slices",
    "relation_features",
]
