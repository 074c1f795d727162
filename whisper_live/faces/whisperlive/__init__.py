"""WhisperLive's WebSocket protocol (port 9090)."""
