"""Where clients of each face put their key, read in one place.

- ``Authorization: Bearer <key>``: OpenAI's SDK and most HTTP clients.
- ``Authorization: Token <key>``: Deepgram's clients and the ``/v1/listen`` reference.
- ``?token=<key>`` on the URL: WebSocket clients that cannot set headers, wscat, curl.
- ``Sec-WebSocket-Protocol: token, <key>``: browsers, whose WebSocket API cannot set headers
  at all but can offer subprotocols (the server must then answer ``token``).
- ``Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.<key>``: OpenAI's browser form
  (the Realtime API); the server answers ``realtime``. Browsers send a short-lived client
  secret this way (``gate/secrets.py``), never a real key.
"""

from __future__ import annotations

from collections.abc import Mapping

SUBPROTOCOL = "token"
REALTIME_SUBPROTOCOL = "realtime"
_OPENAI_KEY = "openai-insecure-api-key."
# What a live face answers when a browser offered its key as subprotocols (either form).
ANSWERED_SUBPROTOCOLS = (SUBPROTOCOL, REALTIME_SUBPROTOCOL)
_SCHEMES = ("bearer", "token")


def answered_subprotocol(offered: list[str]) -> str | None:
    """The subprotocol a live face must answer so that a browser keeps the connection."""
    return next((p for p in ANSWERED_SUBPROTOCOLS if p in offered), None)


def offered_subprotocols(headers: Mapping[str, str]) -> list[str]:
    return [p.strip() for p in headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


def presented_secret(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key a request carries, wherever its client put it; None when it carries none."""
    scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() in _SCHEMES and value.strip():
        return value.strip()
    if query.get("token"):
        return query["token"]
    offered = offered_subprotocols(headers)
    if len(offered) >= 2 and offered[0] == SUBPROTOCOL:
        return offered[1]
    for protocol in offered:
        if protocol.startswith(_OPENAI_KEY) and len(protocol) > len(_OPENAI_KEY):
            return protocol[len(_OPENAI_KEY) :]
    return None
