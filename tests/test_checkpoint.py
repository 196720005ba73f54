"""The typed checkpoint: the only way a trained model is written and read."""

from __future__ import annotations

import pytest
import torch

from perr.checkpoint import Checkpoint, CheckpointError
from perr.config import TrainConfig
from perr.labels import perr_tasks
from perr.models import ModelArgs, build_model
from perr.store import ModalitySpec, StoreError, StoreHeader

SPECS = [ModalitySpec("person_a", 6, "toy", "1"), ModalitySpec("text", 4, "toy", "2")]


def _ckpt() -> Checkpoint:
    args = ModelArgs(
        "smta-dot", {"person_a": 6, "text": 4}, n_classes=5, d_model=8, stage2_hidden=8, heads=2, ff_dim=8
    )
    model = build_model(args)
    return Checkpoint(
        args,
        TrainConfig(model="smta-dot", holdout_fraction=0.1),
        perr_tasks()["5"],
        SPECS,
        T=4,
        dataset="toy",
        synthetic=True,
        model_state=model.state_dict(),
        epoch=3,
    )


def test_round_trip_rebuilds_the_same_model(tmp_path) -> None:
    ck = _ckpt()
    path = ck.save(tmp_path / "best.pt")
    back = Checkpoint.load(path)
    assert back.model_args == ck.model_args and back.config == ck.config and back.task == ck.task
    assert back.features == SPECS and back.T == 4 and back.epoch == 3 and back.resume is None
    x = {"person_a": torch.randn(2, 4, 6), "text": torch.randn(2, 4, 4)}
    torch.testing.assert_close(back.build_model()(x).logits, ck.build_model()(x).logits)


def test_old_config_keys_and_foreign_files(tmp_path) -> None:
    payload = _ckpt().to_payload()
    cfg = payload["config"]
    cfg["val_fraction"] = cfg.pop("holdout_fraction")  # written before the rename
    payload["model_args"]["precision"] = "float32"  # written when bf16 lived in ModelArgs
    assert Checkpoint.from_payload(payload).config.holdout_fraction == 0.1
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: not a perr checkpoint"):
        Checkpoint.load(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt: not a readable perr checkpoint"):
        Checkpoint.load(tmp_path / "junk.pt")


def test_features_from_other_extractors_or_T_are_refused() -> None:
    ck = _ckpt()
    ck.check_features(StoreHeader(SPECS, T=4, n=1), "ok")
    with pytest.raises(
        StoreError, match="modality 'text': version is '3', the checkpoint was trained with '2'"
    ):
        ck.check_features(StoreHeader([SPECS[0], ModalitySpec("text", 4, "toy", "3")], T=4, n=1), "store")
    with pytest.raises(StoreError, match="T=8, the checkpoint was trained with T=4"):
        ck.check_features(StoreHeader(SPECS, T=8, n=1), "store")
