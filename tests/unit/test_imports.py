"""What a module pulls in. The Python client shares the wire's constants with the server
and nothing else: importing it loads no engine module (models, scheduler, diarization) and
no model runtime. The streaming core loads no model: its VAD is handed in."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_client_imports_no_engine_module():
    code = "import sys, json, whisper_live.client; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    ours = [m for m in loaded if m.startswith("whisper_live.")]
    assert "whisper_live.faces.whisperlive.wire" in ours, "the shared constants come from the wire module"
    engine = [
        m for m in ours if m.startswith(("whisper_live.engine", "whisper_live.gate", "whisper_live.server"))
    ]
    assert not engine, engine
    faces = [
        m for m in ours if m.startswith("whisper_live.faces.") and not m.endswith((".wire", ".whisperlive"))
    ]
    assert not faces, faces
    assert not {"faster_whisper", "ctranslate2", "onnxruntime", "aiohttp"} & set(loaded)


def test_the_core_loads_no_model_its_vad_is_handed_in():
    code = (
        "import sys, json, whisper_live.core.session, whisper_live.core.vad;"
        " print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert not [m for m in loaded if m.startswith("whisper_live.engine")]
    assert not {"onnxruntime", "faster_whisper", "ctranslate2"} & set(loaded)


def test_a_session_that_uses_vad_must_be_given_one():
    import pytest

    from whisper_live.core.options import SessionOptions
    from whisper_live.core.session import StreamingSession

    with pytest.raises(ValueError, match="needs a vad"):
        StreamingSession(SessionOptions(use_vad=True))
    assert StreamingSession(SessionOptions(use_vad=False)).options.use_vad is False
