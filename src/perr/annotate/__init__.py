"""Label Studio round trip: export tasks, import annotations, agreement, adjudication, splits."""
