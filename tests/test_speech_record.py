"""What a take records about its Whisper model does not depend on whether the model was loaded.

Found by the reliability suite (issue 20): a run killed after a take's speech step and resumed took the
words from the step cache without loading Whisper, and the take then recorded ``device: auto,
compute_type: auto`` where an uninterrupted run records ``cpu, int8``."""

from __future__ import annotations

import numpy as np

from indexer.speech import BUNDLED, Transcriber


def test_the_record_is_the_same_before_and_after_the_model_loads():
    before = Transcriber(BUNDLED).describe()
    loaded = Transcriber(BUNDLED)
    loaded.transcribe(np.zeros(16000, dtype=np.float32))
    after = loaded.describe()
    assert before == after
    assert before["device"] != "auto" and before["compute_type"] != "auto"
