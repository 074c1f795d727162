"""Deepgram-style /v1/listen: prerecorded and live, over the shared engine."""
