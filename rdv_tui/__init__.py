"""rdv's terminal faces: the ``rdv`` command line and the Textual app."""
