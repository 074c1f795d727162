"""The engine every face shares: model resolution and loading, the decode scheduler and
pool, admission, whole-file transcription and the driver of streaming sessions."""
