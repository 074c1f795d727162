"""Flags and environment: booleans in their usual spellings, and bad values refused in one line."""

from __future__ import annotations

import pytest

from whisper_live.engine import models
from whisper_live.settings import SettingsError, env_flag, parse_args, parse_bool


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("true", True), ("Yes", True), ("ON", True), ("0", False), ("false", False),
     ("no", False), ("Off", False), (" off ", False)],
)  # fmt: skip
def test_booleans_in_every_usual_spelling(text, value):
    assert parse_bool(text, "X") is value


@pytest.mark.parametrize("text", ["maybe", "2", "enabled", "tru", "-1"])
def test_other_booleans_are_refused(text):
    with pytest.raises(SettingsError, match="X=.*1/0, true/false, yes/no or on/off"):
        parse_bool(text, "X")


def test_fit_window_off_in_the_environment_reads_false(monkeypatch):
    monkeypatch.setenv("WHISPER_LIVE_FIT_WINDOW", "off")
    assert parse_args([]).fit_window is False
    monkeypatch.setenv("WHISPER_LIVE_FIT_WINDOW", "yes")
    assert parse_args([]).fit_window is True
    assert parse_args(["--no-fit-window"]).fit_window is False  # the flag wins


def test_allow_download_off_does_not_download(monkeypatch):
    monkeypatch.setenv("WHISPER_LIVE_ALLOW_DOWNLOAD", "off")
    assert env_flag("WHISPER_LIVE_ALLOW_DOWNLOAD") is False
    settings = parse_args([])
    assert settings.allow_download is False  # the setting the server hands its resolver

    def no_download(name):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr("faster_whisper.utils.download_model", no_download)
    with pytest.raises(models.ModelNotFound, match="unknown model 'large-v3'"):
        models.resolve("large-v3", allow_download=settings.allow_download)
    monkeypatch.setenv("WHISPER_LIVE_ALLOW_DOWNLOAD", "1")
    assert parse_args([]).allow_download is True
    assert parse_args(["--no-allow-download"]).allow_download is False


def test_model_aliases_from_flags_and_environment(monkeypatch):
    assert parse_args([]).model_aliases() == models.DEFAULT_ALIASES  # tiny=base out of the box
    settings = parse_args(["--model-alias", "tiny=base", "--model-alias", "large-v3=base"])
    assert settings.model_aliases()["tiny"] == "base" and settings.model_aliases()["large-v3"] == "base"
    monkeypatch.setenv("WHISPER_LIVE_MODEL_ALIAS", "small=base, medium=base")
    aliases = parse_args(["--model-alias", "tiny=base"]).model_aliases()
    assert (aliases["small"], aliases["medium"], aliases["tiny"]) == ("base", "base", "base")
    # A built-in alias never hides a model the operator offers under that name.
    monkeypatch.delenv("WHISPER_LIVE_MODEL_ALIAS")
    assert "tiny" not in parse_args(["--models", "tiny"]).model_aliases()


def test_a_malformed_model_alias_is_one_line(capsys):
    assert "model alias 'tiny' is not NAME=MODEL" in _one_line_error(capsys, ["--model-alias", "tiny"])


def _one_line_error(capsys, argv=()) -> str:
    with pytest.raises(SystemExit) as exit_:
        parse_args(list(argv))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no usage block
    return err


@pytest.mark.parametrize(
    ("env", "value", "says"),
    [
        ("WHISPER_LIVE_PORT", "abc", "WHISPER_LIVE_PORT='abc' is not an integer"),
        ("WHISPER_LIVE_MAX_UPLOAD_MB", "lots", "is not a number"),
        ("WHISPER_LIVE_FIT_WINDOW", "maybe", "is not a boolean"),
        ("WHISPER_LIVE_ALLOW_DOWNLOAD", "sure", "WHISPER_LIVE_ALLOW_DOWNLOAD='sure' is not a boolean"),
        ("WHISPER_LIVE_LOG_LEVEL", "verbose", "choose from debug, info, warning, error"),
    ],
)
def test_bad_environment_is_one_line(monkeypatch, capsys, env, value, says):
    monkeypatch.setenv(env, value)
    assert says in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--log-level", "verbose"], "invalid choice: 'verbose'"),
        (["--port", "abc"], "invalid int value"),
        (["--ping-timeout", "0"], "--ping-timeout must be positive"),
    ],
)
def test_bad_flags_are_one_line(capsys, argv, says):
    assert says in _one_line_error(capsys, argv)


def test_log_level_in_any_case(monkeypatch):
    monkeypatch.setenv("WHISPER_LIVE_LOG_LEVEL", "WARNING")
    assert parse_args([]).log_level == "warning"
    assert parse_args(["--log-level", "DEBUG"]).log_level == "debug"
