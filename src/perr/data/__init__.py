"""Datasets: manifest/store validation, the synthetic default, importers (ERATO, dialogue corpora)."""
