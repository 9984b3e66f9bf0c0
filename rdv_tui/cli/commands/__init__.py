"""One module per ``rdv`` subcommand: ``add_parser(subparsers)`` and ``run(args) -> int``."""
