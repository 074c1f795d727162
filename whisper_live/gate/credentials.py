"""Where clients of each face put their key, read in one place.

- ``Authorization: Bearer <key>``: OpenAI's SDK and most HTTP clients.
- ``Authorization: Token <key>``: Deepgram's clients and the ``/v1/listen`` reference.
- ``?token=<key>`` on the URL: WebSocket clients that cannot set headers, wscat, curl.
- ``Sec-WebSocket-Protocol: token, <key>``: browsers, whose WebSocket API cannot set headers
  at all but can offer subprotocols (the server must then answer ``token``).
"""

from __future__ import annotations

from collections.abc import Mapping

SUBPROTOCOL = "token"
_SCHEMES = ("bearer", "token")


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
    return None
