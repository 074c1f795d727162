"""The one reading of a boolean written as text, for every place a client or an operator
writes one: flags and environment variables, REST form fields and query strings, and
WhisperLive's JSON configuration. Each caller raises its own error shape on ``None``."""

from __future__ import annotations

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
SPELLINGS = "1/0, true/false, yes/no or on/off"


def as_bool(text: str) -> bool | None:
    """True or False for the usual spellings (any case, surrounding spaces ignored); None
    for anything else, never quietly read as true."""
    word = text.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    return None
