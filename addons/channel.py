"""mitmproxy script: record Aeternity state-channel sessions into transcripts.

Usage::

    mitmdump -s addons/channel.py --mode reverse:http://NODE:3014 --set chanlog_dir=./recordings

Both participants' WebSocket connections to ``/channel`` go into one YAML transcript per channel session
(``chanlog_dir/NAME.yaml``), journaled frame by frame in ``chanlog_dir/journals/`` (``chanlog recover``
rebuilds a transcript from a journal left by a killed proxy). Options (``--set chanlog_dir=...``,
``chanlog_path``, ``chanlog_name``, ``chanlog_headers``, ``chanlog_bounded``, ``chanlog_fsync``,
``chanlog_journal_window``, ``chanlog_on_error``, ``chanlog_writers``) are listed in the README, "Recording". The addon itself is
:class:`chanlog.record.addon.ChannelRecorder`.
"""

from chanlog.record.addon import ChannelRecorder
from chanlog.record.view import ChannelViewAddon

# the recorder, and the "chanlog" content view for mitmweb and the mitmproxy console
addons = [ChannelRecorder(log_startup_errors=True), ChannelViewAddon()]
