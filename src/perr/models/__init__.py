"""The nine Table-3 models and the pair-aware `pair-cross` behind one registry.

from perr.models import MODELS, ModelArgs, build_model
model = build_model(ModelArgs("smta-transformer", {"person_a": 1280, ...}, n_classes=5))
out = model(x, mask)            # x, mask: dicts modality -> [B, T, d_m] / [B, T]
loss = model.loss(out, y, mask)  # eq. 5
"""

from perr.models.args import ModelArgs, ModelOutput
from perr.models.attention import ATTENTION
from perr.models.fusion import MODELS, STAGE1, FusionModel, build_model
from perr.models.pair import PairCrossModel, pair_roles
from perr.models.recurrent import ModalityLSTMs
from perr.models.text_encoder import TEXT_POOLINGS, TOKEN_MASK, TOKEN_TYPES, TOKENS, TextFinetuneModel
from perr.models.timeline import attention_timeline

__all__ = [
    "ATTENTION",
    "MODELS",
    "STAGE1",
    "TEXT_POOLINGS",
    "TOKENS",
    "TOKEN_MASK",
    "TOKEN_TYPES",
    "FusionModel",
    "ModalityLSTMs",
    "ModelArgs",
    "ModelOutput",
    "PairCrossModel",
    "TextFinetuneModel",
    "attention_timeline",
    "build_model",
    "pair_roles",
]
