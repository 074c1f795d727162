"""Server settings: every flag also reads an environment variable (for containers)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields

from . import __version__
from .engine.models import DEFAULT_MODEL


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
    # tiny.en int8 holds 16 real-time streams at p90 final latency 0.88 s on 2 cores, and
    # 40 at 1.39 s (docs/BENCHMARKS.md); admission by measured capacity guards bigger models.
    max_clients: int = field(default_factory=lambda: 8 * len(os.sched_getaffinity(0)))
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
    "max_clients": "concurrent streams; more get WAIT (default: 8 per CPU core)",
    "max_connection_time": "seconds a stream may stay connected before DISCONNECT",
    "capacity_admission": "also answer WAIT when what streams have cost so far (CPU for VAD, sockets"
    " and finals) says another would not keep up",
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
}

CHOICES = {"log_format": ("text", "json")}


def _env_name(field_name: str) -> str:
    return "WHISPER_LIVE_" + field_name.upper()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whisper-live-server",
        description="Real-time speech-to-text: WebSocket streaming and an OpenAI-style REST API.",
        epilog="Each option can also be set as WHISPER_LIVE_<OPTION> in the environment.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    defaults = ServerSettings()
    for f in fields(ServerSettings):
        default = getattr(defaults, f.name)
        env = os.environ.get(_env_name(f.name))
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            value = default if env is None else env.lower() not in ("0", "false", "no", "")
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=value, help=_HELP[f.name]
            )
        else:
            value = type(default)(env) if env is not None else default
            parser.add_argument(
                flag,
                type=type(default),
                default=value,
                choices=CHOICES.get(f.name),
                help=_HELP[f.name] + (f" (default {value})" if value != "" else ""),
            )
    return parser


def parse_args(argv: list[str] | None = None) -> ServerSettings:
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        parser.error("--ssl-certfile and --ssl-keyfile go together")
    return ServerSettings(**{f.name: getattr(args, f.name) for f in fields(ServerSettings)})
