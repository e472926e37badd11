"""The municipality's key server: who may open which door when, tickets, revocation, re-keying,
journal ingestion and reports (docs/keyserver.md).

``create_app(settings)`` (in :mod:`keyserver.app`) builds the HTTP application; the
``keyserver`` command (:mod:`keyserver.cli`) initialises, serves and imports.
"""

__all__ = ["create_app"]


def create_app(*args, **kwargs):
    """Shortcut for :func:`keyserver.app.create_app` (imported lazily)."""
    from .app import create_app as _create

    return _create(*args, **kwargs)
