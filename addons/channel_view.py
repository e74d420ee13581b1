"""mitmproxy script: the ``chanlog`` content view alone (without recording).

Usage::

    mitmweb -s addons/channel_view.py --mode reverse:http://NODE:3014

WebSocket messages on ``/channel`` are shown with their participant (from the URL's ``role``), the pretty
JSON, the description of the event or method, and every encoded object decoded. ``addons/channel.py``
(the recorder) loads the same view, with the participant the recorder paired. The addon itself is
:class:`chanlog.record.view.ChannelViewAddon`.
"""

from chanlog.record.view import ChannelViewAddon

addons = [ChannelViewAddon()]
