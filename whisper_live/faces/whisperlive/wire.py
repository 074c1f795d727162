"""The WhisperLive wire's constants that both ends share: the server's face
(``protocol.py``) and the Python client (``whisper_live.client``).

It imports nothing, so a client that needs only these pulls in no part of the engine
(models, scheduler, diarization); a test checks ``sys.modules`` after importing the client.
"""

from __future__ import annotations

END_OF_AUDIO = "END_OF_AUDIO"  # binary or text frame: no more audio, send the finals and close
BACKEND = "faster_whisper"
DEFAULT_PORT = 9090

# The ``message`` / ``status`` values of the server's messages.
SERVER_READY = "SERVER_READY"
DISCONNECT = "DISCONNECT"
WAIT = "WAIT"
ERROR = "ERROR"
WARNING = "WARNING"
