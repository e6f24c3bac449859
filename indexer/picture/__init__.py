"""Picture: keyframes, the open_clip embedder, shot tags, frame search."""
