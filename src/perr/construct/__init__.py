"""Dataset construction from raw episodes (paper §3.2–3.3): shots, segments, faces, subtitles, stats."""
