"""Training and evaluation: the paper's protocol, resumable runs, several seeds, `perr evaluate`."""

from perr.train.evaluate_checkpoint import evaluate
from perr.train.loop import RunResult, make_optimizer, model_args_for, train
from perr.train.seeds import summarise_runs, train_seeds

__all__ = [
    "RunResult",
    "evaluate",
    "make_optimizer",
    "model_args_for",
    "summarise_runs",
    "train",
    "train_seeds",
]
