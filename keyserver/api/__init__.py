"""HTTP routers of the key server (mounted by :func:`keyserver.app.create_app`)."""
