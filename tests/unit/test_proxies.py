"""--trusted-proxies: X-Forwarded-For / Forwarded read only from trusted peers, right to left."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict
from websockets.datastructures import Headers

from whisper_live.gate.proxies import client_peer, forwarded_client
from whisper_live.settings import ServerSettings, SettingsError, parse_args

TRUSTED = ServerSettings(trusted_proxies="10.0.0.0/8, 192.0.2.1, fd00::/8").trusted_networks()


@pytest.mark.parametrize(
    "peer,headers,expected",
    [
        ("10.1.2.3", {"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),
        # a client's made-up entry in front is not believed: the first untrusted hop from the right is
        ("10.1.2.3", {"X-Forwarded-For": "1.1.1.1, 203.0.113.7, 10.9.9.9"}, "203.0.113.7"),
        ("192.0.2.1", {"Forwarded": 'for=198.51.100.4;proto=https, for="[2001:db8::1]:443"'}, "2001:db8::1"),
        ("10.1.2.3", {"Forwarded": "for=203.0.113.9:5555"}, "203.0.113.9"),
        ("::ffff:10.1.2.3", {"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),  # IPv4-mapped peer
        ("fd00::5", {"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),
        ("10.1.2.3", {"X-Forwarded-For": "10.4.4.4"}, "10.4.4.4"),  # only proxies: the leftmost
        ("10.1.2.3", {"Forwarded": "for=unknown"}, None),
        ("10.1.2.3", {}, None),
        ("203.0.113.50", {"X-Forwarded-For": "1.2.3.4"}, None),  # not a trusted proxy: ignored
        ("10.1.2.3", {"X-Forwarded-For": "not an address"}, None),
    ],
)
def test_forwarded_client(peer, headers, expected):
    assert forwarded_client(peer, CIMultiDict(headers), TRUSTED) == expected


def test_every_header_line_counts_and_nothing_is_trusted_by_default():
    lines = CIMultiDict([("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "10.2.2.2")])
    assert forwarded_client("10.1.1.1", lines, TRUSTED) == "203.0.113.7"
    ws = Headers([("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "10.2.2.2")])
    assert client_peer("10.1.1.1:4000", ws, TRUSTED) == "198.51.100.1"
    assert client_peer("10.1.1.1:4000", ws, []) == "10.1.1.1:4000"
    assert client_peer("?", ws, TRUSTED) == "?"


def test_the_flag_is_checked_at_start_up():
    assert (
        parse_args(["--trusted-proxies", "10.0.0.0/8,::1", "--max-frame-mb", "2"]).max_frame_bytes
        == 2 * 2**20
    )
    for bad in (["--trusted-proxies", "10.0.0.0/33"], ["--max-frame-mb", "0"]):
        with pytest.raises((SystemExit, SettingsError)):
            parse_args(bad)
