"""Server settings: every flag also reads an environment variable (for containers)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from typing import NoReturn

from . import __version__
from .booleans import SPELLINGS, as_bool
from .engine.models import DEFAULT_ALIASES, DEFAULT_MODEL, parse_aliases


@dataclass
class ServerSettings:
    host: str = "0.0.0.0"
    port: int = 9090
    http_port: int = 8001
    model: str = DEFAULT_MODEL
    models: str = ""  # extra models clients may ask for, comma-separated; "" = bundled ones
    device: str = "cpu"
    compute_type: str = "int8"
    workers: int = 0  # decode threads; 0 = one per core
    cpu_threads: int = 0  # threads per decode; 0 = cores / workers
    # tiny.en int8 holds 16 real-time streams at p90 final latency 1.17 s on 2 cores, and
    # 24 at 1.32 s (docs/BENCHMARKS.md, 2026-11-23); the knee (32-40) moves with the
    # machine's speed, and admission by measured capacity guards it and bigger models.
    max_clients: int = field(default_factory=lambda: 16 * len(os.sched_getaffinity(0)))
    max_connection_time: float = 600.0
    capacity_admission: bool = True
    fit_window: bool = True
    max_batch: int = 0  # 0: 8 on a GPU, 1 (no batching) on a CPU, where it was measured not to pay
    max_upload_mb: float = 25.0
    listen_allow_private_urls: bool = False
    preload: bool = True
    log_level: str = "info"
    log_format: str = "text"  # text or json (one object per line)
    keys_file: str = ""  # "" = $XDG_CONFIG_HOME/whisper-live/keys.json (where `keys create` writes)
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    # Browser origins allowed on both ports besides the server's own page; "null" is a page
    # opened from a file. "*" allows every origin.
    cors_origins: str = "null"
    shutdown_timeout: float = 30.0
    # WebSocket keepalive: a ping every ping_interval seconds; a peer that has not answered
    # within ping_timeout is gone (a half-open connection: a dead NAT, a laptop closed).
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    # Models and the HTTP faces (issue 24): names clients hard-code, downloads, the API docs.
    model_alias: str = ""  # NAME=MODEL, comma-separated (--model-alias is repeatable)
    allow_download: bool = False  # let faster-whisper fetch a model name from the hub
    public_docs: bool = False  # /docs, /redoc and /openapi.json without a key
    # Access and transport limits an operator meets (issue 25).
    no_auth: bool = False  # explicit: open even when a keys file or WHISPER_LIVE_API_KEY exists
    trusted_proxies: str = ""  # CIDRs whose X-Forwarded-For / Forwarded name the real client
    max_frame_mb: float = 16.0  # largest WebSocket frame (WhisperLive face); over it: ERROR

    def model_aliases(self) -> dict[str, str]:
        """Names clients send -> the model that serves them (the pool adds ``whisper-1``,
        the default model); the built-in aliases apply unless the name is itself a model offered here;
        ``--model-alias`` entries always do."""
        offered = {self.model, *(m.strip() for m in self.models.split(",") if m.strip())}
        aliases = {name: target for name, target in DEFAULT_ALIASES.items() if name not in offered}
        aliases.update(parse_aliases(self.model_alias))
        # A built-in alias follows an --model-alias of its target (small.en -> small -> DIR).
        return {name: aliases.get(target, target) for name, target in aliases.items()}

    def trusted_networks(self) -> list:
        """--trusted-proxies parsed (``ipaddress`` networks); a bare address is a /32 or /128."""
        import ipaddress

        return [
            ipaddress.ip_network(c.strip(), strict=False)
            for c in self.trusted_proxies.split(",")
            if c.strip()
        ]

    @property
    def max_frame_bytes(self) -> int:
        return int(self.max_frame_mb * 2**20)

    def allowed_models(self) -> list[str] | None:
        from .engine.models import bundled_models

        extra = [m.strip() for m in self.models.split(",") if m.strip()]
        return [self.model, *bundled_models(), *extra]

    def allowed_origins(self) -> set[str]:
        """--cors-origins as a set ("*" included as is); origins compare without a final slash."""
        return {o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()}

    @property
    def tls(self) -> bool:
        return bool(self.ssl_certfile)


_HELP = {
    "host": "address to listen on",
    "port": "WebSocket port (WhisperLive protocol)",
    "http_port": "HTTP port for the REST API and the browser page; 0 disables it",
    "model": "default model: a bundled name (tiny.en, base), a local directory, or a hub name",
    "models": "comma-separated extra models clients may select (bundled ones always may)",
    "device": "cpu, cuda or auto",
    "compute_type": "CTranslate2 compute type (int8, int8_float32, float16, float32, ...)",
    "workers": "decodes run in parallel (0: one per CPU core)",
    "cpu_threads": "threads inside one decode (0: cores divided by workers)",
    "max_clients": "concurrent streams; more get WAIT (default: 16 per CPU core; the measured capacity, when lower, rules)",
    "max_connection_time": "seconds a stream may stay connected before DISCONNECT",
    "capacity_admission": "also answer WAIT when what streams have cost over the last minute (CPU for"
    " VAD, sockets and finals) says another would not keep up",
    "fit_window": "encode streamed utterances at their own length instead of a padded 30 s window"
    " (several times cheaper; falls back to the padded window when the result looks wrong)",
    "max_batch": "most fitted-window decodes from different streams run in one model call"
    " (0: 8 on a GPU, 1 = no batching on a CPU, where it was measured not to pay)",
    "max_upload_mb": "largest REST upload in MiB",
    "listen_allow_private_urls": "let /v1/listen fetch audio URLs on loopback and private networks"
    " (off: a client could make the server probe its own network)",
    "preload": "load the default model at start-up",
    "log_level": "debug, info, warning or error",
    "log_format": "text, or json for one JSON object per line",
    "keys_file": "API keys file made by 'whisper-live-server keys create'; when it holds a key (or"
    " WHISPER_LIVE_API_KEY is set) every face requires one (default: ~/.config/whisper-live/keys.json)",
    "ssl_certfile": "TLS certificate (PEM): both ports then serve wss:// and https://",
    "ssl_keyfile": "TLS private key (PEM) for --ssl-certfile",
    "cors_origins": "browser origins allowed to use the REST API and the WebSocket, comma-separated,"
    " or *; the server's own page is always allowed, null is a page opened from a file",
    "shutdown_timeout": "seconds SIGTERM may take: streams get their finals and in-flight requests"
    " finish, then the process exits (a second SIGTERM exits at once)",
    "ping_interval": "seconds between WebSocket keepalive pings",
    "ping_timeout": "seconds a WebSocket peer has to answer a ping before its connection is dropped",
    "model_alias": "NAME=MODEL: serve requests for NAME (e.g. tiny, which WhisperKit's clients send)"
    " with MODEL; repeatable, or comma-separated in the environment; built in: "
    + ", ".join(f"{k}={v}" for k, v in DEFAULT_ALIASES.items()),
    "allow_download": "let faster-whisper download a model name that is neither bundled nor a local"
    " directory (off: a client could make the server fetch gigabytes)",
    "public_docs": "serve the API docs (/docs, /redoc, /openapi.json) without an API key",
    "no_auth": "serve everyone even when API keys are configured (a keys file or WHISPER_LIVE_API_KEY);"
    " without it, configured keys are required, also once every key is revoked",
    "trusted_proxies": "comma-separated addresses or CIDRs of proxies (HAProxy, ...) whose"
    " X-Forwarded-For / Forwarded headers name the client in logs and per-key records; from"
    " anyone else those headers are ignored",
    "max_frame_mb": "largest WebSocket frame in MiB on the WhisperLive face; a bigger one is"
    " answered with ERROR and close 1009",
}

CHOICES = {"log_format": ("text", "json"), "log_level": ("debug", "info", "warning", "error")}


class SettingsError(ValueError):
    """A flag or environment value that cannot be used; its message is the whole story."""


def parse_bool(value: str, name: str) -> bool:
    """The usual spellings of a boolean (1/0, true/false, yes/no, on/off, any case); anything
    else is an error, never quietly read as true."""
    parsed = as_bool(value)
    if parsed is None:
        raise SettingsError(f"{name}={value!r} is not a boolean: use {SPELLINGS}")
    return parsed


def env_flag(name: str, default: bool = False) -> bool:
    """A boolean from the environment; unset or empty means ``default``."""
    value = os.environ.get(name, "")
    return parse_bool(value, name) if value.strip() else default


class _Parser(argparse.ArgumentParser):
    """Errors in one line (the full usage is what --help is for)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _env_name(field_name: str) -> str:
    return "WHISPER_LIVE_" + field_name.upper()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="whisper-live-server",
        description="Real-time speech-to-text: WebSocket streaming and an OpenAI-style REST API.",
        epilog="Each option can also be set as WHISPER_LIVE_<OPTION> in the environment.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    defaults = ServerSettings()
    for f in fields(ServerSettings):
        default = getattr(defaults, f.name)
        name = _env_name(f.name)
        env = os.environ.get(name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            try:
                value = env_flag(name, default)
            except SettingsError as exc:
                parser.error(str(exc))
            # A flag already named in the negative (--no-auth) is a plain switch: argparse's
            # BooleanOptionalAction would read its leading "no-" as "off".
            action = "store_true" if f.name.startswith("no_") else argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=value, help=_HELP[f.name])
        elif f.name == "model_alias":  # repeatable; the environment's commas join the same list
            parser.add_argument(
                flag, action="append", default=[env] if env else [], metavar="NAME=MODEL", help=_HELP[f.name]
            )
        else:
            value = default if env is None else _env_value(parser, name, env, default)
            parser.add_argument(
                flag,
                type=str.lower if f.name in CHOICES else type(default),
                default=value,
                choices=CHOICES.get(f.name),
                help=_HELP[f.name] + (f" (default {value})" if value != "" else ""),
            )
    return parser


def _env_value(parser: argparse.ArgumentParser, name: str, env: str, default):
    kind = type(default)
    try:
        value = kind(env)
    except ValueError:
        parser.error(f"{name}={env!r} is not {'an integer' if kind is int else 'a number'}")
    field_name = name.removeprefix("WHISPER_LIVE_").lower()
    if field_name in CHOICES:
        value = value.lower()
    if field_name in CHOICES and value not in CHOICES[field_name]:
        parser.error(f"{name}={env!r}: choose from {', '.join(CHOICES[field_name])}")
    return value


def parse_args(argv: list[str] | None = None) -> ServerSettings:
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        parser.error("--ssl-certfile and --ssl-keyfile go together")
    args.model_alias = ",".join(args.model_alias)
    try:
        parse_aliases(args.model_alias)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        ServerSettings(trusted_proxies=args.trusted_proxies).trusted_networks()
    except ValueError as exc:
        parser.error(f"--trusted-proxies: {exc}")
    if args.max_frame_mb <= 0:
        parser.error("--max-frame-mb must be positive")
    for name in ("ping_interval", "ping_timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return ServerSettings(**{f.name: getattr(args, f.name) for f in fields(ServerSettings)})
