"""perr's one error idiom.

A :class:`PerrError` is something the user can fix: an unreadable manifest, store, checkpoint or export,
an option or configuration perr cannot use, an output folder that holds another configuration's results.
Each stage names its own subclass (``ManifestError``, ``StoreError``, …); each also keeps the builtin
base it had (``ValueError`` or ``RuntimeError``), so code that catches those still does.

The command line maps these in one place (``perr.cli``): a :class:`PerrError` is exit status 2 with a
one-line ``error: …`` message, and :class:`InputsFailed` — a command over many inputs met some that failed,
the others done — is exit status 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PerrError(Exception):
    """An input, option or output folder that perr cannot use; the message says which and why."""


class ConfigMismatch(PerrError, ValueError):
    """An output folder holds results made with another configuration (a run folder, a features folder)."""


class InputsFailed(Exception):
    """A command over many inputs met some that failed; the others are done and each failure was named.

    Not a :class:`PerrError`: the command did its job, and its exit status (1) says some inputs failed.
    `summary` is the line printed last ("2 of 5 clip(s) failed"); empty when the command's own report
    already ends with it.
    """

    def __init__(self, summary: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
