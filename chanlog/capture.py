"""Compatibility: the recorder moved to :mod:`chanlog.record` (addon, pairing, journal, writer).

``from chanlog.capture import ChannelRecorder`` keeps working (addon scripts written before the move).
"""

from chanlog.record.addon import *  # noqa: F403
from chanlog.record.addon import ChannelRecorder, Conn, Session, header_dict  # noqa: F401
from chanlog.record.pairing import *  # noqa: F403
