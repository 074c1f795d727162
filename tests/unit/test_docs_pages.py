"""The API docs pages without a server: which assets they load, and the fall-back page."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import make_mocked_request

from whisper_live.faces.http import docs
from whisper_live.faces.http.openapi import FALLBACK_HTML


def _html(page, monkeypatch, assets) -> tuple[str, str]:
    monkeypatch.setattr(docs, "ASSETS", assets)
    response = asyncio.run(page(make_mocked_request("GET", "/docs")))
    return response.text, response.headers["Content-Security-Policy"]


def test_pages_use_the_bundled_assets_or_fall_back(monkeypatch, tmp_path):
    swagger, redoc = docs._page(docs.SWAGGER_HTML), docs._page(docs.REDOC_HTML)
    html, policy = _html(swagger, monkeypatch, tmp_path)
    assert (
        f'src="{docs.ASSETS_PATH}/swagger-ui-dist/swagger-ui-bundle.js"' in html
        and 'url: "/openapi.json"' in html
    )
    assert "default-src 'self'" in policy and "https:" not in policy  # nothing from elsewhere
    html, _ = _html(redoc, monkeypatch, tmp_path)
    assert f'src="{docs.ASSETS_PATH}/redoc/bundles/redoc.standalone.js"' in html
    # Without the sidecar wheel both addresses still document the API (our own renderer).
    assert _html(swagger, monkeypatch, None)[0] == _html(redoc, monkeypatch, None)[0] == FALLBACK_HTML


def test_the_sidecar_assets_are_found_without_importing_django():
    import sys

    assets = docs._assets_dir()
    assert assets is not None and (assets / "redoc" / "bundles" / "redoc.standalone.js").is_file()
    assert "django" not in sys.modules
