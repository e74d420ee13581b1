"""mitmproxy script shipped inside the package: record Aeternity state-channel sessions.

Usage (from an installed package or a clone)::

    mitmdump -q --listen-host 127.0.0.1 -s "$(chanlog addon-path)" --mode reverse:http://NODE:3014

The same recorder as ``addons/channel.py`` in a clone; options and behaviour in the README, "Recording".
This folder holds nothing but this script: mitmproxy puts a script's folder on ``sys.path``.
"""

from chanlog.record.addon import ChannelRecorder
from chanlog.record.view import ChannelViewAddon

# the recorder, and the "chanlog" content view for mitmweb and the mitmproxy console
addons = [ChannelRecorder(log_startup_errors=True), ChannelViewAddon()]
