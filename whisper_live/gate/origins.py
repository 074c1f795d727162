"""Which browser pages may use this server: the one Origin rule both ports apply.

A browser says which page a request comes from (``Origin``); other clients send none and
are not concerned. Allowed: the server's own page (the host the request was sent to, on
that port or on the server's HTTP port, whatever the scheme), and the origins of
``--cors-origins`` (``*`` for all, ``null`` for pages opened from a file). On the
WebSocket this is the defence against cross-site WebSocket hijacking; on the REST API it
decides the CORS answer.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit


def origin_allowed(
    origin: str | None, host: str | None, allowed: Collection[str], own_ports: Collection[int]
) -> bool:
    if origin is None:
        return True  # not a browser
    origin = origin.strip().rstrip("/")
    if "*" in allowed or origin in allowed:
        return True
    try:
        page = urlsplit(origin)
        target = urlsplit("//" + (host or ""))
        page_port = page.port or {"https": 443, "http": 80}.get(page.scheme)
    except ValueError:
        return False
    if not page.hostname or page.hostname != target.hostname:
        return False
    return page.netloc == target.netloc or page_port in own_ports
