"""perr — Pairwise Emotional Relationship Recognition in drama and movie videos (Gao et al., ACM MM'21)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
