"""API keys: the store, the CLI and where each face's clients put them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from multidict import CIMultiDict

from whisper_live.gate.credentials import presented_secret
from whisper_live.gate.keys import KeyStore, digest


def test_a_created_key_is_shown_once_and_stored_only_as_a_hash(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    assert not store.enabled
    secret = store.create("alice", max_streams=2)
    text = (tmp_path / "keys.json").read_text()
    assert secret not in text and digest(secret) in text
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0
    assert store.enabled
    key = store.authenticate(secret)
    assert key is not None and key.name == "alice" and key.max_streams == 2
    assert store.authenticate(secret + "x") is None and store.authenticate(None) is None


def test_revoking_takes_effect_in_a_running_store(tmp_path):
    path = tmp_path / "keys.json"
    server_side = KeyStore(path)  # what a running server holds
    cli_side = KeyStore(path)
    secret = cli_side.create("bob")
    assert server_side.authenticate(secret) is not None
    cli_side.revoke("bob")
    assert server_side.authenticate(secret) is None
    assert server_side.enabled  # the only key is revoked: keys stay required (fail closed)


def test_environment_key(tmp_path):
    store = KeyStore(tmp_path / "none.json", env_secret="s3cret")
    assert store.enabled and store.authenticate("s3cret").name == "env"
    assert store.authenticate("other") is None


def test_names_are_unique(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    store.create("carol")
    with pytest.raises(ValueError, match="exists"):
        store.create("carol")
    with pytest.raises(ValueError, match="no key"):
        store.revoke("dave")


def test_cli_create_list_revoke(tmp_path):
    path = tmp_path / "keys.json"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "whisper_live.server", "keys", "--keys-file", str(path), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = cli("create", "--name", "ci", "--max-uploads", "3")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("wl_") and len(secret) > 40
    listing = cli("list")
    assert "ci#" in listing.stdout and "active" in listing.stdout and secret not in listing.stdout
    revoked = cli("revoke", "ci")
    assert revoked.returncode == 0 and "refuse everyone" in revoked.stderr  # the last key: closed, not open
    assert "revoked" in cli("list").stdout
    assert json.loads(path.read_text())["keys"][0]["revoked"] is True
    assert cli("revoke", "nobody").returncode == 2


@pytest.mark.parametrize(
    "headers,query,expected",
    [
        ({"Authorization": "Bearer abc"}, {}, "abc"),
        ({"authorization": "token abc"}, {}, "abc"),
        ({}, {"token": "abc"}, "abc"),
        ({"Sec-WebSocket-Protocol": "token, abc"}, {}, "abc"),
        ({"Sec-WebSocket-Protocol": "chat"}, {}, None),
        ({"Authorization": "Basic Zm9vOmJhcg=="}, {}, None),
        ({}, {}, None),
    ],
)
def test_where_clients_put_their_key(headers, query, expected):
    assert presented_secret(CIMultiDict(headers), query) == expected


def test_the_gate_requires_a_valid_key_once_any_is_configured(tmp_path):
    from whisper_live.errors import LimitReached, Unauthorized
    from whisper_live.gate.gate import Gate

    gate = Gate(KeyStore(tmp_path / "keys.json"))
    assert gate.open and gate.admit({}, {}) is None
    secret = gate.keys.create("team", max_streams=1)
    assert not gate.open
    with pytest.raises(Unauthorized, match="required"):
        gate.admit({}, {})
    with pytest.raises(Unauthorized, match="not valid"):
        gate.admit({"Authorization": "Bearer nope"}, {})
    key = gate.admit({}, {"token": secret})
    with gate.slot(key, "streams"):
        with pytest.raises(LimitReached, match="limit is 1"), gate.slot(key, "streams"):
            pass
        with gate.slot(key, "uploads"):  # no upload limit on this key
            assert gate.held(key, "uploads") == 1
    assert gate.held(key, "streams") == 0


def test_keys_fail_closed(tmp_path):
    """Revoking never widens access: with every key revoked, a broken keys file, or the file
    deleted under a running server, keys stay required; only ``no_auth`` opens the gate."""
    from whisper_live.errors import Unauthorized
    from whisper_live.gate.gate import Gate

    path = tmp_path / "keys.json"
    gate = Gate(KeyStore(path))
    assert gate.open and "no keys file" in gate.describe()
    secret = gate.keys.create("last")
    KeyStore(path).revoke("last")
    assert not gate.open and "API keys required" in gate.describe() and "0 usable keys" in gate.describe()
    for headers in ({}, {"Authorization": f"Bearer {secret}"}):
        with pytest.raises(Unauthorized):
            gate.admit(headers, {})
    path.write_text("{ hand-broken")
    assert not gate.open
    with pytest.raises(Unauthorized):
        gate.admit({"Authorization": f"Bearer {secret}"}, {})
    with pytest.raises(ValueError, match="cannot be read"):
        KeyStore(path).create("over-it")  # never rewrite (and lose) a file it could not read
    assert path.read_text() == "{ hand-broken"
    path.unlink()
    assert not gate.open  # needs a restart to open: a running server never opens by itself
    assert Gate(KeyStore(path)).open  # ... which is this: no file, no key, open

    path.write_text('{"keys": []}')
    assert not Gate(KeyStore(path)).open  # a keys file, even empty, means keys are wanted
    opened = Gate(KeyStore(path), no_auth=True)
    assert opened.open and opened.admit({}, {}) is None and "--no-auth" in opened.describe()
    assert not Gate(KeyStore(tmp_path / "none.json", env_secret="s3cret")).open


def test_no_auth_is_a_flag_and_an_environment_variable(monkeypatch):
    from whisper_live.settings import parse_args

    monkeypatch.delenv("WHISPER_LIVE_NO_AUTH", raising=False)
    assert not parse_args([]).no_auth and parse_args(["--no-auth"]).no_auth
    monkeypatch.setenv("WHISPER_LIVE_NO_AUTH", "1")
    assert parse_args([]).no_auth
