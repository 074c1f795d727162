"""WhisperX API server's own paths (health and model management); its transcription
parameters live on the OpenAI paths, which it shares."""
