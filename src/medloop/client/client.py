"""A synchronous client for the medloop HTTP API (``/api/v1``), built on httpx.

Example::

    from medloop.client import MedloopClient

    with MedloopClient("https://medloop.example.org", token="...") as c:
        a = c.analyze("knee", file="scan.png")           # upload + analyse in one call
        print(a.id, a.model_version, a.uncertainty)
        open("mask.png", "wb").write(c.analysis_mask("knee", a.id))
        fix = c.correct("knee", a.id, "fixed_mask.png")  # a PNG label map
        print(fix.dice_vs_prediction, fix.corrections_until_finetune)

Security defaults: TLS certificates are always verified (pass a CA bundle path as ``verify``
for a private CA; ``verify=False`` works only with a :class:`RuntimeWarning`), redirects are
never followed (the token is never sent to another host), and ids are percent-encoded into
paths so that an id cannot walk out of its route.
"""

from __future__ import annotations

from medloop.client._admin import AdminApi
from medloop.client._analyses import AnalysesApi
from medloop.client._base import DEFAULT, FileInput
from medloop.client._projects import ProjectsApi
from medloop.client._versions import VersionsApi

__all__ = ["DEFAULT", "FileInput", "MedloopClient"]


class MedloopClient(ProjectsApi, AnalysesApi, VersionsApi, AdminApi):
    """Client for one medloop server; one method per API endpoint.

    ``base_url`` is the server root (``https://host:8443``, or with a path prefix when behind
    a proxy); the API lives under ``/api/v1`` below it. ``token`` is the API token from
    ``medloop users add`` (sent as ``Authorization: Bearer``). ``timeout`` is per request in
    seconds. ``verify`` is ``True`` (system/certifi CAs), a CA bundle path, or an
    :class:`ssl.SSLContext`.

    ``http_client`` lets you supply your own :class:`httpx.Client` — for instance Starlette's
    ``TestClient(app)`` for in-process tests; the client then uses its transport and settings
    (``timeout`` and ``verify`` are ignored), sets the auth header per request, and does not
    close it. With an ``http_client`` that has its own ``base_url``, pass ``base_url=""``.

    Example::

        from fastapi.testclient import TestClient

        with TestClient(app) as tc:
            c = MedloopClient("http://testserver", token, http_client=tc)
            assert c.health().status == "ok"
    """
