"""whisper_live: real-time speech-to-text over WebSocket and HTTP."""

__version__ = "0.1.0"
