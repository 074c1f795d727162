"""The Faster-Whisper Transcriber's server API (/transcribe, /transcribe/raw, /models)."""
