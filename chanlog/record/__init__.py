"""The recorder: the mitmproxy side of chanlog (DESIGN.md, "Layout": ``chanlog/record/``).

* :mod:`chanlog.record.pairing`: pure functions that pair WebSocket connections into channel sessions and name
  them (no mitmproxy import: any source of connections can reuse it, such as a HAR import).
* :mod:`chanlog.record.journal`: the crash-safe JSON Lines journal of one session; its writer survives write
  errors (disk full) and marks what it lost as a ``gap``.
* :mod:`chanlog.record.writer`: transcripts built from journals, streamed, in worker processes off the
  proxy's event loop; ``chanlog recover`` uses the same code.
* :mod:`chanlog.record.addon`: :class:`~chanlog.record.addon.ChannelRecorder`, the mitmproxy addon whose hooks
  only collect (``mitmdump -s addons/channel.py``).
* :mod:`chanlog.record.view`: the mitmproxy content view that shows channel frames decoded.
* :mod:`chanlog.record.har`: a HAR's channel connections fed through the recorder (``chanlog import X.har``).

Importing this package imports nothing else; import the module you need.
"""
