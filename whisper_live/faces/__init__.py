"""Faces: thin adapters that translate one API's wire format to the engine and map domain
errors (``whisper_live.errors``) to that API's own error shape."""
