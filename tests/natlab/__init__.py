"""The NAT lab tests (see ``tests/__init__.py`` for why this is a package)."""
