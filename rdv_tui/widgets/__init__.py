"""Widgets of the rdv app, by area: race, server, session."""
