"""Per-timestep multimodal feature extraction: one registered extractor per modality."""
