"""rdv: relay-assisted peer-to-peer TCP (the rdv/1 protocol), as an asyncio library.

This package never imports textual or rich: it is the headless core that the TUI,
the CLI and other applications build on.
"""

__version__ = "0.1.0"
