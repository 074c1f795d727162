"""Fetching a client's audio URL on the server, for faces that take ``{"url": ...}``.

The server makes the request, so it is guarded: http(s) only, a size cap read chunk by
chunk, a total time limit and few redirects, each hop checked. Unless allowed, hosts on
loopback, private, link-local or otherwise non-public addresses are refused, checked on the
addresses the connection really uses (a resolver that filters them), so a name that
resolves to 127.0.0.1 is refused as well as the literal address.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ... import errors
from .uploads import MIB

TIMEOUT = 60.0
MAX_REDIRECTS = 3
CHUNK = 64 * 1024


def _remote_error(message: str) -> errors.InvalidRequest:
    return errors.InvalidRequest(message, param="url", code="remote_content_error")


def is_public(address: str) -> bool:
    """An address the public internet routes to (not loopback, private, link-local, ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class PublicResolver(AbstractResolver):
    """The default resolver, refusing names with any non-public address."""

    def __init__(self):
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        if any(not is_public(r["host"]) for r in results):
            raise _remote_error(f"{host} resolves to a private or loopback address: not fetched")
        return results

    async def close(self) -> None:
        await self._resolver.close()


def _check_url(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.InvalidRequest("url must be an http or https URL", param="url")
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        if parts.hostname.lower() == "localhost" or parts.hostname.lower().endswith(".localhost"):
            raise _remote_error("url points at this machine: not fetched") from None
        return  # a name: the resolver checks what it resolves to
    if not is_public(str(literal)):
        raise _remote_error(f"url points at a private or loopback address ({literal}): not fetched")


async def fetch_url(url: str, limit: int, allow_private: bool = False) -> bytes:
    """The body at ``url``, at most ``limit`` bytes. Raises InvalidRequest (fetch failed,
    refused address) or AudioTooLarge."""
    too_large = errors.AudioTooLarge(
        f"the audio at url is larger than this server's limit of {limit / MIB:g} MiB", param="url"
    )
    connector = aiohttp.TCPConnector(resolver=None if allow_private else PublicResolver())
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for _ in range(MAX_REDIRECTS + 1):
                _check_url(url, allow_private)
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        url = urljoin(url, response.headers["Location"])
                        continue
                    if response.status >= 400:
                        raise _remote_error(f"fetching url failed: HTTP {response.status} {response.reason}")
                    if response.content_length is not None and response.content_length > limit:
                        raise too_large
                    body = bytearray()
                    async for chunk in response.content.iter_chunked(CHUNK):
                        body += chunk
                        if len(body) > limit:
                            raise too_large
                    return bytes(body)
            raise _remote_error(f"fetching url failed: more than {MAX_REDIRECTS} redirects")
    except errors.WhisperLiveError:
        raise
    except TimeoutError:
        raise _remote_error(f"fetching url failed: no complete answer within {TIMEOUT:g} s") from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, errors.WhisperLiveError) else None
        if cause is not None:
            raise cause from None
        raise _remote_error(f"fetching url failed: {exc}") from exc
