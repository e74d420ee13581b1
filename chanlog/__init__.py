"""chanlog: record, decode, render and replay Aeternity state-channel WebSocket sessions.

The one data model is :class:`chanlog.model.Transcript`; see ``DESIGN`` in the README.
"""

from chanlog.errors import ChanlogError

__version__ = "0.1.0"
__all__ = ["ChanlogError", "__version__"]
