"""The gate: which browser pages may ask (origins), who is asking (API keys) and how much
they may hold at once (per-key limits).

Every face calls ``check_origin`` and ``admit`` with the request's headers and query before
it decodes anything, and holds a ``slot`` for as long as a stream or an upload runs. Faces
turn the domain errors raised here (``OriginNotAllowed``, ``Unauthorized``,
``LimitReached``) into their own shapes.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Literal

from ..errors import LimitReached, OriginNotAllowed, Unauthorized
from . import secrets
from .credentials import presented_secret
from .keys import ApiKey, KeyStore
from .origins import origin_allowed

log = logging.getLogger(__name__)

Kind = Literal["streams", "uploads"]


class Gate:
    def __init__(
        self,
        keys: KeyStore | None = None,
        no_auth: bool = False,
        origins: Callable[[], Collection[str]] = frozenset,
        own_ports: set[int] | None = None,
    ):
        self.keys = keys or KeyStore()
        self.no_auth = no_auth  # --no-auth: the operator opened the server explicitly
        # --cors-origins, the other pages that may use the server: read at each check, so a
        # server reconfigured while running (as the tests do) is taken at its word.
        self.origins = origins
        # Ports of this server (HTTP, WebSocket), filled in once bound: a page served from
        # either is the server's own.
        self.own_ports: set[int] = own_ports if own_ports is not None else set()
        self._held: Counter[tuple[str, Kind]] = Counter()

    @property
    def open(self) -> bool:
        """Anyone may use every face: ``--no-auth``, or no keys configured at all (no keys
        file, no environment key). Revoking keys never opens it (``KeyStore.enabled``)."""
        return self.no_auth or not self.keys.enabled

    def describe(self) -> str:
        """The access mode in one phrase, for the start-up log."""
        if self.no_auth:
            return "open: --no-auth" + (f" (ignoring {self.keys.describe()})" if self.keys.enabled else "")
        if self.keys.enabled:
            return f"API keys required ({self.keys.describe()})"
        return f"open: no API keys ({self.keys.describe()})"

    def check_origin(self, origin: str | None, host: str | None) -> None:
        """OriginNotAllowed for a browser page of another site that ``--cors-origins`` does
        not list (``gate/origins.py``); clients that send no ``Origin`` are not concerned."""
        if not origin_allowed(origin, host, self.origins(), self.own_ports):
            raise OriginNotAllowed(f"pages from {origin} may not use this server (see --cors-origins)")

    def admit(self, headers: Mapping[str, str], query: Mapping[str, str]) -> ApiKey | None:
        """The caller's key (None on an open server); Unauthorized when one is required and
        the request's is missing, wrong or revoked."""
        if self.open:
            return None
        secret = presented_secret(headers, query)
        if secrets.is_client_secret(secret):
            if secrets.viewed_stream(secret) is not None:
                raise Unauthorized("a viewer token only views one stream's captions; it opens nothing else")
            key = secrets.verify(secret, self.keys)
            if key is None:
                raise Unauthorized("the client secret is not valid (expired, forged, or its API key revoked)")
            return key
        key = self.keys.authenticate(secret)
        if key is None:
            raise Unauthorized(
                "an API key is required: send 'Authorization: Bearer <key>' (or 'Token <key>'),"
                " '?token=<key>', or the WebSocket subprotocols 'token, <key>'"
                " (or 'realtime, openai-insecure-api-key.<key>')"
                if secret is None
                else "the API key is not valid (wrong or revoked)"
            )
        return key

    def admit_viewer(
        self, headers: Mapping[str, str], query: Mapping[str, str], stream_id: str
    ) -> ApiKey | None:
        """A viewer of stream ``stream_id``'s captions: a viewer token of that stream, or any
        valid API key (None on an open server); Unauthorized otherwise."""
        if self.open:
            return None
        secret = presented_secret(headers, query)
        if secrets.is_client_secret(secret):
            key = secrets.verify(secret, self.keys, view=stream_id)
            if key is None:
                raise Unauthorized(
                    "the viewer token is not valid for this stream (another stream's, expired,"
                    " forged, or its API key revoked)"
                )
            return key
        key = self.keys.authenticate(secret)
        if key is None:
            raise Unauthorized("a viewer token (?token=...) or an API key is required to view captions")
        return key

    @contextlib.contextmanager
    def slot(self, key: ApiKey | None, kind: Kind) -> Iterator[None]:
        """Hold one of the key's concurrent streams or uploads while the block runs."""
        if key is None:
            yield
            return
        limit = key.max_streams if kind == "streams" else key.max_uploads
        held = self._held[(key.name, kind)]
        if limit is not None and held >= limit:
            raise LimitReached(f"key {key.name!r} already has {held} {kind} open (its limit is {limit})")
        self._held[(key.name, kind)] += 1
        try:
            yield
        finally:
            self._held[(key.name, kind)] -= 1

    def held(self, key: ApiKey, kind: Kind) -> int:
        return self._held[(key.name, kind)]
