"""The screens of the rdv app: connect, race dashboard, session, server."""
