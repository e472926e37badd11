"""The key server's web UI for IT and planners: server-rendered pages under ``/ui`` (docs/webui.md).

``router`` is included by :func:`keyserver.app.create_app`. Templates and the small CSS/JS
are package data; there is no build step and nothing is loaded from elsewhere.
"""

from .pages import router

__all__ = ["router"]
