"""Short-lived client secrets: what a browser holds instead of an API key.

An application's backend, holding a real key, asks ``POST /v1/realtime/client_secrets`` for
a secret that lets a browser open streams for a short time (OpenAI's ephemeral keys). The
secret is self-contained and signed, so no server keeps a table of them:

    ek_<payload>.<signature>     payload: base64url JSON {"k": key name, "exp": unix time, "n": nonce,
                                                          "s": the session configuration, if any}

The signature is an HMAC-SHA256 of the payload under a key derived from the parent key's
stored hash (``ApiKey.sha256``). So a secret works on every replica that reads the same keys
file (no shared session store, no sticky balancing), it is refused the moment its parent
key is revoked or removed (the key is looked up at every use), and it needs no server
state. The price: anyone who can read the keys file can mint secrets for its keys, so the
keys file must stay private (it is written 0600). A secret is checked when a stream
connects; a stream already open when the secret expires goes on, as OpenAI's do.

A *viewer token* is the same secret with a scope: the claim ``"v": <stream id>`` lets it
only watch that one stream's captions (``GET /v1/streams/{id}/captions``). The gate refuses
a scoped secret everywhere else (it opens no stream and calls no REST path), and the
captions endpoint refuses an unscoped one. A broadcast runs for hours, so a viewer token
may live up to ``VIEWER_MAX_SECONDS`` (default ``VIEWER_DEFAULT_SECONDS``); like a client
secret it is checked when a viewer connects, and revoking its API key ends it at the next
(re)connection.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time

from .keys import ApiKey, KeyStore

PREFIX = "ek_"
DEFAULT_SECONDS = 60  # OpenAI's default is 600 s; ours is shorter: it is only for connecting
MIN_SECONDS, MAX_SECONDS = 10, 7200  # OpenAI's bounds for expires_after.seconds
# Viewer tokens: an OBS browser source is set up before a show and reconnects during it.
VIEWER_DEFAULT_SECONDS, VIEWER_MAX_SECONDS = 4 * 3600, 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signing_key(key: ApiKey) -> bytes:
    return hmac.new(bytes.fromhex(key.sha256), b"whisper-live client secret v1", hashlib.sha256).digest()


def is_client_secret(secret: str | None) -> bool:
    return bool(secret) and secret.startswith(PREFIX)


def issue(
    key: ApiKey,
    seconds: int = DEFAULT_SECONDS,
    now: float | None = None,
    session: dict | None = None,
    view: str | None = None,
) -> tuple[str, int]:
    """A secret bound to ``key`` and its expiry (unix seconds); ``session``: the configuration
    streams opened with it start from (signed with the rest, so a browser cannot change it);
    ``view``: a viewer token, good only for watching the stream of that id."""
    expires = int((time.time() if now is None else now) + seconds)
    claims: dict = {"k": key.name, "exp": expires, "n": secrets.token_urlsafe(9)}
    if session is not None:
        claims["s"] = session
    if view is not None:
        claims["v"] = view
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64(hmac.new(_signing_key(key), payload.encode(), hashlib.sha256).digest())
    return f"{PREFIX}{payload}.{signature}", expires


def verify(secret: str, keys: KeyStore, now: float | None = None, view: str | None = None) -> ApiKey | None:
    """The parent key of a valid, unexpired secret of the right scope (``view``: a viewer
    token of exactly that stream; None: an unscoped client secret); None when it is forged,
    expired, of another scope, or its key is revoked or gone."""
    try:
        payload, _, signature = secret[len(PREFIX) :].partition(".")
        claims = json.loads(_unb64(payload))
        name, expires = claims["k"], int(claims["exp"])
        presented = _unb64(signature)
    except (ValueError, KeyError, TypeError, binascii.Error, AttributeError):
        return None
    if expires <= (time.time() if now is None else now) or claims.get("v") != view:
        return None
    for key in keys.entries():
        if key.name == name and not key.revoked:
            expected = hmac.new(_signing_key(key), payload.encode(), hashlib.sha256).digest()
            if hmac.compare_digest(expected, presented):
                return key
    return None


def session_of(secret: str) -> dict | None:
    """The session configuration a secret carries. Read only after the gate verified it."""
    try:
        session = json.loads(_unb64(secret[len(PREFIX) :].partition(".")[0])).get("s")
    except (ValueError, AttributeError, binascii.Error):
        return None
    return session if isinstance(session, dict) else None


def viewed_stream(secret: str | None) -> str | None:
    """The stream a viewer token is scoped to (unverified: only to word an error)."""
    if not is_client_secret(secret):
        return None
    try:
        view = json.loads(_unb64(secret[len(PREFIX) :].partition(".")[0])).get("v")
    except (ValueError, AttributeError, binascii.Error):
        return None
    return view if isinstance(view, str) else None
