"""``python -m whisper_live.client`` is ``whisper-live-client``."""

from .cli import main

if __name__ == "__main__":
    main()
