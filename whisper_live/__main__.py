"""``python -m whisper_live``: the server, as ``whisper-live-server``."""

from .server import main

if __name__ == "__main__":
    main()
