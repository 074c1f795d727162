"""Who the client is behind a proxy: ``X-Forwarded-For`` / ``Forwarded``, from trusted peers only.

Behind HAProxy every connection comes from the balancer, so logs and per-key records would
all name it. The headers a proxy adds name the client, but anyone can send them, so they
are read only when the connection's peer is in ``--trusted-proxies``; from anyone else they
are ignored. The list of hops is walked from the right (the entry the nearest proxy
added), skipping trusted proxies: the first address that is not one is the client, so a
client cannot put a made-up address in front of the chain and be believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a hop as proxies write it: ``1.2.3.4``, ``1.2.3.4:5678``,
    ``"[2001:db8::1]:80"``, ``2001:db8::1``; None for ``unknown`` or an obfuscated name."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, trusted: Sequence[Network]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in trusted)


def _values(headers, name: str) -> list[str]:
    """Every line of a header: aiohttp's multidict (``getall``), websockets' Headers
    (``get_all``) or a plain mapping."""
    if hasattr(headers, "getall"):
        return list(headers.getall(name, []))
    if hasattr(headers, "get_all"):
        return list(headers.get_all(name))
    value = headers.get(name)
    return [value] if value else []


def _hops(headers) -> list[str]:
    """The client chain, leftmost first: RFC 7239 ``Forwarded`` if sent, else ``X-Forwarded-For``."""
    forwarded = _values(headers, "Forwarded")
    if forwarded:
        hops = []
        for element in ",".join(forwarded).split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    hops.append(value)
        return hops
    return [hop for line in _values(headers, "X-Forwarded-For") for hop in line.split(",") if hop.strip()]


def forwarded_client(peer_host: str | None, headers, trusted: Sequence[Network]) -> str | None:
    """The client's address as trusted proxies report it; None when the peer is not a
    trusted proxy, sent no such header, or the chain names no usable address."""
    if not trusted or not peer_host:
        return None
    peer = _address(peer_host)
    if peer is None or not _trusted(peer, trusted):
        return None
    hops = _hops(headers)
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return None  # "unknown" or obfuscated: nothing after it can be checked
        if not _trusted(address, trusted):
            return str(address)
    first = _address(hops[0]) if hops else None
    return str(first) if first is not None else None


def client_peer(peer: str, headers, trusted: Sequence[Network]) -> str:
    """``peer`` ("address:port" of the connection) or, behind a trusted proxy, the client's
    address it forwarded for (no port: the proxy's own port says nothing about the client)."""
    return forwarded_client(peer.rsplit(":", 1)[0], headers, trusted) or peer
