"""Speakers: diarization (segmentation-3.0 + CAM++), refinement, identity across takes (the voice
registry), channel ownership."""
