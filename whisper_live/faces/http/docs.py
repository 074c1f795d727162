"""The API docs: ``/openapi.json``, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, offline.

FastAPI users (the Transcriber's and WhisperX's servers are FastAPI apps) expect Swagger UI
and ReDoc at those addresses. Both come from the ``drf-spectacular-sidecar`` wheel, which
ships their current builds as static files (installed with ``--no-deps``: its Django app is
never imported, only its files are read), so the pages work on a machine without internet.
Without that wheel both addresses serve a small page of our own that renders the same
document. The docs need a key like any route unless the operator says ``--public-docs``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from aiohttp import web

from .face import SETTINGS, open_route
from .openapi import FALLBACK_HTML, spec

ASSETS_PATH = "/docs/assets"


def _assets_dir() -> Path | None:
    """The sidecar's static files, found without importing the package (it imports Django)."""
    found = importlib.util.find_spec("drf_spectacular_sidecar")
    if found is None or not found.submodule_search_locations:
        return None
    root = Path(next(iter(found.submodule_search_locations))) / "static" / "drf_spectacular_sidecar"
    needed = (
        "swagger-ui-dist/swagger-ui-bundle.js",
        "swagger-ui-dist/swagger-ui.css",
        "redoc/bundles/redoc.standalone.js",
    )
    return root if all((root / f).is_file() for f in needed) else None


ASSETS = _assets_dir()

SWAGGER_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>whisper-live API: Swagger UI</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui-dist/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-dist/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout",
  tryItOutEnabled: false, persistAuthorization: true,
}});
</script></body></html>
"""

REDOC_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>whisper-live API: ReDoc</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{margin:0;padding:0}}</style>
</head><body><redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS_PATH}/redoc/bundles/redoc.standalone.js"></script>
</body></html>
"""


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(spec())


# The pages load nothing from elsewhere: ReDoc's sidebar shows Redocly's logo from their
# CDN, which this policy stops before any request leaves (the logo then hides itself).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def _page(html: str):
    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=html if ASSETS is not None else FALLBACK_HTML,
            content_type="text/html",
            headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
        )

    return page


def add_routes(app: web.Application) -> None:
    routes = [
        web.get("/openapi.json", openapi_json),
        web.get("/docs", _page(SWAGGER_HTML)),
        web.get("/redoc", _page(REDOC_HTML)),
    ]
    if ASSETS is not None:
        routes.append(web.static(ASSETS_PATH, ASSETS))
    app.router.add_routes(routes)  # not a face: no upload slot, open while draining
    if app[SETTINGS].public_docs:
        for resource in {route.resource for route in app.router.routes() if _is_docs(route.resource)}:
            open_route(app, resource)


def _is_docs(resource: web.AbstractResource | None) -> bool:
    if resource is None:
        return False
    path = resource.canonical
    return path in ("/openapi.json", "/docs", "/redoc") or path.startswith(ASSETS_PATH)
