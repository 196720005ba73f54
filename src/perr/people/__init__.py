"""People (whole bodies), shared by every stage: person detectors behind one registry, for people whose
face is not visible (seen from behind, too small, turned away). Boxes are :class:`perr.faces.FaceBox`
values (a body box; no keypoints)."""

from perr.people.detectors import PERSON_DETECTORS, PersonDetector, make_person_detector, person_model_dir

__all__ = ["PERSON_DETECTORS", "PersonDetector", "make_person_detector", "person_model_dir"]
