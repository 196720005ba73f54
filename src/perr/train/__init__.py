"""Training and evaluation: the paper's protocol, resumable runs, several seeds, `perr evaluate`."""

from perr.train.evaluate_checkpoint import evaluate
from perr.train.loop import make_optimizer
from perr.train.seeds import summarise_runs, train_seeds
from perr.train.trainer import RunResult, Trainer, model_args_for, train

__all__ = [
    "RunResult",
    "Trainer",
    "evaluate",
    "make_optimizer",
    "model_args_for",
    "summarise_runs",
    "train",
    "train_seeds",
]
