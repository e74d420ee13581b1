"""Recorded URLs: dropping named query parameters (the recorder's ``chanlog_drop_params`` option); the
endpoint of a ``ws://`` URL, for messages that name where a connection went (``chanlog play``).

The recorder keeps a connection's URL as the client sent it, every query parameter included (the node's
channel options, and whatever else a client puts there: tokens, host names). :func:`drop_params` removes
named parameters from a URL before it is recorded; the URL forwarded to the node is not changed.
Pure functions: no mitmproxy here.
"""

from __future__ import annotations

from urllib.parse import unquote_plus, urlsplit

#: Default ports of the WebSocket schemes (RFC 6455, section 3: as HTTP's and HTTPS's).
WS_PORTS = {"ws": 80, "wss": 443}

#: Longest ``chanlog_drop_params`` value accepted, in characters.
MAX_NAMES_TEXT = 4096


def param_names(text: str) -> tuple[str, ...]:
    """The parameter names of a ``chanlog_drop_params`` value: comma-separated, blanks around a name
    ignored, duplicates once, in order (``"host, token"`` -> ``("host", "token")``; ``""`` -> ``()``).
    Raises ``ValueError`` for a name holding ``&``, ``=``, ``#`` or a control character, or a value longer
    than :data:`MAX_NAMES_TEXT`."""
    if len(text) > MAX_NAMES_TEXT:
        raise ValueError(f"longer than {MAX_NAMES_TEXT} characters")
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        bad = next((c for c in name if c in "&=#" or ord(c) < 32 or ord(c) == 127), None)
        if bad is not None:
            raise ValueError(f"parameter name {name!r} holds {bad!r}")
        if name not in names:
            names.append(name)
    return tuple(names)


def drop_params(url: str, names: tuple[str, ...] | frozenset[str]) -> str:
    """``url`` without the query parameters named in ``names`` (every occurrence; a name is compared
    after percent-decoding, as a server reads it). The other parameters keep their order and their
    spelling byte for byte; a query left empty loses its ``?``. Linear in the length of ``url``."""
    base, hash_, fragment = url.partition("#")
    head, question, query = base.partition("?")
    if not names or not question:
        return url
    wanted = frozenset(names)
    kept = [piece for piece in query.split("&") if unquote_plus(piece.split("=", 1)[0]) not in wanted]
    return head + ("?" + "&".join(kept) if kept else "") + hash_ + fragment


def host_port(host: str, port: int) -> str:
    """``HOST:PORT`` as written in a URL: an IPv6 address in brackets (``[::1]:3014``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ws_endpoint(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of a ``ws://`` or ``wss://`` URL (RFC 6455, section 3); the port
    defaults to 80 or 443, the path to ``""``. Raises ``ValueError`` saying what is wrong: another scheme,
    no host, a port that is not a number in 1..65535."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in WS_PORTS:
        raise ValueError(f"not a WebSocket URL: expected ws:// or wss://, got {parts.scheme + ':' if parts.scheme else 'no scheme'}")
    if not parts.hostname:
        raise ValueError("no host in the URL")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        port = WS_PORTS[scheme]
    elif not 0 < port < 65536:
        raise ValueError("the port must be a number from 1 to 65535")
    return scheme, parts.hostname, port, parts.path
