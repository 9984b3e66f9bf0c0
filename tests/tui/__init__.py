"""The Textual app's tests (see ``tests/__init__.py`` for why this is a package)."""
