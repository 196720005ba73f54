"""The tasks of a dialogue corpus: a known corpus keeps its own class order; any other gets one task per
label column, its classes the sorted distinct values, named by class count."""

from __future__ import annotations

from collections.abc import Callable

from perr.data.dialogue.corpus import DialogueCorpus
from perr.data.meld import meld_tasks
from perr.labels import Task


def known_corpora() -> dict[str, Callable[[], dict[str, Task]]]:
    """Corpora whose class order we know (dataset name → tasks)."""
    return {"meld": meld_tasks}


def derive_tasks(corpus: DialogueCorpus) -> dict[str, Task]:
    """Tasks of a corpus: a known corpus's own tasks when its label values match one exactly, else
    one task per label column with the sorted values as classes, named by class count."""
    values = {c: sorted({u.labels[c] for u in corpus.utterances()}) for c in corpus.label_columns}
    for make in known_corpora().values():
        tasks = make()
        by_column = {t.column: t for t in tasks.values()}
        if set(by_column) == set(values) and all(set(values[c]) <= set(by_column[c].classes) for c in values):
            return tasks
    counts = [str(len(v)) for v in values.values()]
    tasks: dict[str, Task] = {}
    for column, classes in values.items():
        name = str(len(classes))
        if counts.count(name) > 1 and column != "label":
            name = f"{name}-{column}"
        tasks[name] = Task(name, tuple(classes), column=column)
    return tasks
