"""People (whole bodies), shared by every stage: person detectors behind one registry."""

from perr.people.detectors import PERSON_DETECTORS, PersonDetector, make_person_detector

__all__ = ["PERSON_DETECTORS", "PersonDetector", "make_person_detector"]
