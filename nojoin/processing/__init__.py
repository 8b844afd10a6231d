"""The processing engine: `contract` (the Qt-free seam), faster-whisper + diarization engines, the
spawned worker process, `strategies/` (local, remote) and the `pipeline` that runs them."""
