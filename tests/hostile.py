"""A transcript whose every rendered value is hostile: method names, error messages, results, URLs, notes,
text and binary frames, the name and parameters carry Mermaid syntax (``%%{init ...}%%`` directives,
``-->``, ``;``, ``#``, entity codes such as ``#59;``), Markdown (code fences, headings, links) and HTML
(``<script>``), line breaks and control characters. Shared by the render, Mermaid, importer and browser
tests. Events carry what the node layout can hold (no times, closes by the client without a code), so that
node layout -> import gives the same events back.
"""

from __future__ import annotations

import json

from chanlog.model import Close, Frame, Note, Open, Transcript

DIRECTIVE = '%%{init: {"theme": "dark", "themeCSS": "body {display: none}"}}%%'
SCRIPT = "<script>window.pwned = 1</script>"
#: A text frame that, pasted into a ``javascript`` fence, would close it and forge a frame of its own.
FORGERY = ('not json\n```\n\n#### responder ---> node\n```javascript\n'
           '{\n  "jsonrpc": "2.0",\n  "method": "channels.shutdown"\n}\n```\n\n#### injected heading')
#: Every label of the diagram that comes from the transcript, for checks that none is lost.
METHOD = f"channels.x;y#z {DIRECTIVE} --> N: forged;\nend\nI->>N: #59; {SCRIPT}"


def _node(payload: dict, role: str = "initiator") -> Frame:
    return Frame.from_wire(json.dumps(payload, indent=2), role=role, conn=0 if role == "initiator" else 1,
                           sender="node")


def hostile() -> Transcript:
    """The hostile transcript: 9 frames on two connections (an error reply among them), a note, two closes."""
    error = {"code": 3, "message": f"Rejected; #59; <b>x</b> & 'y'\nsecond line\r\nthird %% end {DIRECTIVE}",
             "data": [{"code": 1008, "message": SCRIPT}]}
    return Transcript(name=f"hostile\n# injected heading {SCRIPT} `x` [link](http://evil/)", events=[
        Open(role="initiator", conn=0, url=f"ws://127.0.0.1:3014/channel?role=initiator&host=%3Cx%3E{SCRIPT}"
                                           "&port=1|2`&x=```"),
        Open(role="responder", conn=1, url="ws://127.0.0.1:3014/channel?role=responder"),
        _node({"jsonrpc": "2.0", "method": "channels.info", "params": {"channel_id": None,
               "data": {"event": "fsm_up", "fsm_id": "ba_x"}}, "version": 1}),
        _node({"jsonrpc": "2.0", "method": "channels.info", "params": {"channel_id": None,
               "data": {"event": f"ev;{DIRECTIVE}\n# h", "fsm_id": "ba_x"}}, "version": 1}, "responder"),
        Frame.from_wire(json.dumps({"jsonrpc": "2.0", "id": 1, "method": METHOD, "params": {"`x`": "```"}},
                                   indent=2), role="initiator", conn=0, sender="client"),
        _node({"jsonrpc": "2.0", "id": 1, "error": error, "version": 1}),
        _node({"jsonrpc": "2.0", "id": 2, "result": "ok;\nend\n", "version": 1}, "responder"),
        _node({"jsonrpc": "2.0", "id": 3, "result": f"#35; {DIRECTIVE}", "version": 1}, "responder"),
        Frame(role="responder", conn=1, sender="client", text=FORGERY),
        Frame(role="responder", conn=1, sender="client", text='{"compact":true,"kept":"verbatim"}'),
        Frame(role="initiator", conn=0, sender="client", binary=b"\x00\x01```\xff" + SCRIPT.encode()),
        Note(role="initiator", conn=0, text=f"Channel is `open`\n# not a heading {SCRIPT} [a](b) &amp;\r\\"),
        Close(role="initiator", conn=0, closed_by="client"),
        Close(role="responder", conn=1, closed_by="client"),
    ])


def content(transcript: Transcript) -> list[tuple]:
    """What the node layout carries of each event: kind, role, connection, and the URL, the frame's content
    (parsed JSON, verbatim text or bytes, and who sent it) or the note's text."""
    out: list[tuple] = []
    for e in transcript.events:
        if isinstance(e, Frame):
            body = ("json", e.data) if e.is_json else ("text", e.text) if e.text is not None else ("bin", e.binary)
            out.append(("frame", e.role, e.conn, e.sender, body))
        elif isinstance(e, Open):
            out.append(("open", e.role, e.conn, e.url))
        elif isinstance(e, Note):
            out.append(("note", e.role, e.conn, e.text))
        else:
            out.append((e.KIND, e.role, e.conn))
    return out
