"""API keys: made, listed and revoked from the command line, stored only as hashes.

A key is a random secret (``wl_`` + 32 url-safe random bytes) shown once when it is made.
The keys file keeps its SHA-256, its name and optional per-key limits. A slow password hash
buys nothing for secrets with 256 bits of entropy, and a plain digest lets every request be
checked in microseconds. Every stored hash is compared with ``hmac.compare_digest`` (no
early exit), so the time a check takes says nothing about how close a guess came.

The file is re-read when it changes on disk, so ``keys revoke`` takes effect on a running
server without a restart. A single key may also come from ``WHISPER_LIVE_API_KEY`` (for
containers), named ``env``.

Keys fail closed: once a keys file exists or the environment's key is set, keys are
required, even when every key in the file is revoked (revoking must never widen access)
or the file cannot be read. A running server that has required keys keeps requiring them
until it restarts: deleting the keys file and restarting, or ``--no-auth``, opens it.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ENV_KEY = "WHISPER_LIVE_API_KEY"
ENV_FILE = "WHISPER_LIVE_KEYS_FILE"
PREFIX = "wl_"

log = logging.getLogger(__name__)


def default_keys_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "whisper-live" / "keys.json"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass
class ApiKey:
    """A key as stored: never its secret."""

    name: str
    sha256: str
    created: str = ""
    revoked: bool = False
    max_streams: int | None = None  # concurrent streams with this key; None: only the server's limit
    max_uploads: int | None = None  # concurrent REST requests with this key

    @property
    def label(self) -> str:
        """What logs and metrics call the key: its name and the start of its hash."""
        return f"{self.name}#{self.sha256[:8]}"


class KeyStore:
    """The keys a server accepts: those in the keys file plus the environment's key."""

    def __init__(self, path: str | os.PathLike | None = None, env_secret: str | None = None):
        self.path = Path(path) if path else None
        self._env = ApiKey("env", digest(env_secret)) if env_secret else None
        self._file_keys: list[ApiKey] = []
        self._stamp: tuple[int, int] | None = None
        self._file_seen = False  # a keys file has existed while this store was used: stay closed
        self._unreadable: str | None = None  # why the keys file could not be read, if it could not

    @classmethod
    def from_environment(cls, path: str | os.PathLike | None = None) -> KeyStore:
        chosen = path or os.environ.get(ENV_FILE) or default_keys_file()
        return cls(chosen, os.environ.get(ENV_KEY) or None)

    # ------------------------------------------------------------------ reading
    def entries(self) -> list[ApiKey]:
        self._refresh()
        return [*self._file_keys, *([self._env] if self._env else [])]

    @property
    def enabled(self) -> bool:
        """Keys are required: a keys file exists (or existed since this store was made),
        whatever it holds, or the environment's key is set. With every key revoked, none
        is accepted and the server stays closed."""
        self._refresh()
        return self._env is not None or self._file_seen

    def describe(self) -> str:
        """Where the keys come from, for the start-up log."""
        usable = sum(not key.revoked for key in self.entries())
        sources = [f"keys file {self.path}"] if self._file_seen else []
        if self._env is not None:
            sources.append(f"${ENV_KEY}")
        if sources:
            return f"{' and '.join(sources)}, {usable} usable key{'s' if usable != 1 else ''}"
        return f"no keys file at {self.path}" if self.path else "no keys file"

    def authenticate(self, secret: str | None) -> ApiKey | None:
        """The key a presented secret belongs to, or None (missing, wrong or revoked)."""
        if not secret:
            return None
        presented = digest(secret)
        found = None
        for key in self.entries():  # compare with every key: no early exit
            if hmac.compare_digest(presented, key.sha256) and not key.revoked:
                found = key
        return found

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            # Keys that were there are gone: none is accepted, and (_file_seen) none is
            # needed again only after a restart.
            self._file_keys, self._stamp = [], None
            return
        self._file_seen = True
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                self._file_keys = [ApiKey(**entry) for entry in json.loads(self.path.read_text())["keys"]]
                self._unreadable = None
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # Hand-broken: accept no file key (fail closed) until it is fixed.
                log.error("keys file %s cannot be read (%s): no key from it is accepted", self.path, exc)
                self._file_keys, self._unreadable = [], f"{type(exc).__name__}: {exc}"
            self._stamp = stamp

    # ------------------------------------------------------------------ changing
    def create(self, name: str, max_streams: int | None = None, max_uploads: int | None = None) -> str:
        """Make a key and return its secret: the only time it is ever seen."""
        self._check_readable()
        if any(key.name == name for key in self.entries()):
            raise ValueError(f"a key named {name!r} exists already")
        secret = PREFIX + secrets.token_urlsafe(32)
        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self._save([*self._file_keys, ApiKey(name, digest(secret), created, False, max_streams, max_uploads)])
        return secret

    def revoke(self, name: str) -> None:
        self._check_readable()
        keys = self.entries()
        if not any(key.name == name and key is not self._env for key in keys):
            raise ValueError(f"no key named {name!r} in {self.path}")
        for key in self._file_keys:
            if key.name == name:
                key.revoked = True
        self._save(self._file_keys)

    def _check_readable(self) -> None:
        """Never rewrite a keys file that could not be read: its keys would be lost."""
        self._refresh()
        if self._unreadable:
            raise ValueError(f"{self.path} cannot be read ({self._unreadable}): fix or remove it first")

    def _save(self, keys: list[ApiKey]) -> None:
        if self.path is None:
            raise ValueError("no keys file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"keys": [asdict(key) for key in keys]}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys.")
        with os.fdopen(fd, "w") as out:  # readable by the owner only: hashes, but still
            out.write(body)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._stamp = None
        self._refresh()


def main(argv: list[str] | None = None) -> int:
    """``whisper-live-server keys create|list|revoke``."""
    parser = argparse.ArgumentParser(prog="whisper-live-server keys", description="Manage API keys.")
    parser.add_argument(
        "--keys-file",
        default=os.environ.get(ENV_FILE) or str(default_keys_file()),
        help=f"where keys are stored (default {default_keys_file()}, or ${ENV_FILE})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key and print its secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--max-streams", type=int, help="concurrent streams allowed with this key")
    create.add_argument("--max-uploads", type=int, help="concurrent REST requests allowed with this key")
    commands.add_parser("list", help="the keys, without secrets")
    revoke = commands.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("name")
    args = parser.parse_args(argv)
    store = KeyStore(args.keys_file)
    try:
        if args.command == "create":
            print(store.create(args.name, args.max_streams, args.max_uploads))
        elif args.command == "revoke":
            store.revoke(args.name)
            print(f"revoked {args.name}")
            if not any(not key.revoked for key in store.entries()):
                print(
                    "no usable key left: servers using this file refuse everyone until a key is"
                    " created (or they restart with --no-auth, or without this file)",
                    file=sys.stderr,
                )
        else:
            for key in store.entries():
                limits = ", ".join(
                    f"{what} {value}"
                    for what, value in (("streams", key.max_streams), ("uploads", key.max_uploads))
                    if value is not None
                )
                state = "revoked" if key.revoked else "active"
                print(f"{key.label}\t{state}\t{key.created or '-'}\t{limits or 'no per-key limits'}")
    except (ValueError, OSError, json.JSONDecodeError) as exc:
        parser.exit(2, f"whisper-live-server keys: {exc}\n")
    return 0
