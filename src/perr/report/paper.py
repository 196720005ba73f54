"""The paper's published figures (Gao et al., ACM MM'21), for side-by-side tables. Percentages."""

from __future__ import annotations

from collections.abc import Mapping

#: Table 3 — model → task → (Micro-F1, Macro-F1) on ERATO.
TABLE3: Mapping[str, Mapping[str, tuple[float, float]]] = {
    "lstm": {"5": (63.80, 44.43), "3": (64.98, 56.23)},
    "dot": {"5": (64.35, 45.80), "3": (66.55, 58.89)},
    "nonlocal": {"5": (63.72, 47.16), "3": (67.49, 59.74)},
    "multihead": {"5": (64.11, 47.15), "3": (67.30, 60.20)},
    "transformer": {"5": (64.82, 48.90), "3": (68.59, 58.98)},
    "smta-dot": {"5": (65.45, 47.92), "3": (69.18, 60.20)},
    "smta-nonlocal": {"5": (65.33, 48.00), "3": (69.66, 60.80)},
    "smta-multihead": {"5": (65.60, 47.71), "3": (68.95, 61.35)},
    "smta-transformer": {"5": (66.55, 49.81), "3": (70.05, 61.73)},
}

#: Paper's names for the rows.
DISPLAY: Mapping[str, str] = {
    "lstm": "LSTM",
    "dot": "Dot-product",
    "nonlocal": "Non-local",
    "multihead": "Multi-head",
    "transformer": "Transformer",
    "smta-dot": "SMTA Dot-product",
    "smta-nonlocal": "SMTA Non-local",
    "smta-multihead": "SMTA Multi-head",
    "smta-transformer": "SMTA Transformer",
}

#: Table 4 — dropped modality group → task → (Micro-F1, Macro-F1), SMTA Transformer on ERATO.
#: Rows 1–4 each leave one group out; "none" is row 5 (all modalities).
TABLE4: Mapping[str, Mapping[str, tuple[float, float]]] = {
    "person": {"5": (63.80, 44.91), "3": (66.55, 56.56)},
    "background": {"5": (66.27, 48.93), "3": (69.48, 60.52)},
    "audio": {"5": (64.94, 47.02), "3": (67.96, 58.87)},
    "text": {"5": (65.19, 46.24), "3": (68.24, 58.55)},
    "none": {"5": (66.55, 49.81), "3": (70.05, 61.73)},
}

#: Published text-only weighted-F1 on MELD (test), for the generality table. Both read future context.
MELD_PUBLISHED: Mapping[str, Mapping[str, float]] = {
    "RoBERTa": {"7": 62.02, "3": 72.12},
    "COSMIC": {"7": 65.21, "3": 73.20},
}
