"""Live captions of a running stream for viewers (``/v1/streams/{id}/captions``)."""
