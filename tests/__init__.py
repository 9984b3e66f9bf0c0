"""rdv's test suite, a package so that its helpers have one name everywhere.

Support modules (``tests.server_support``, ``tests.session_support``, ``tests.feeding``,
``tests.go_vectors``) are imported by that absolute name, the same under pytest (which puts
the repository root on ``sys.path`` for a package) and mypy.
"""
