"""The nine Table-3 models behind one registry (see perr.models.registry)."""
