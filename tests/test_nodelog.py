"""Importer: every era of the node's Markdown logs, the scraped seed, errors with file:line."""

from __future__ import annotations

import pytest
from conftest import CORPUS, corpus_params

from chanlog.errors import LogImportError
from chanlog.model import Close, Frame, Note, Open
from chanlog.render import render
from chanlog.sources.nodelog import import_file, import_log


@pytest.mark.parametrize("log", corpus_params())
def test_corpus_log_renders_back_byte_for_byte(log):
    original = log.read_text(encoding="utf-8")
    transcript = import_file(log)
    assert render(transcript, layout="node") == original


@pytest.mark.parametrize("log", corpus_params())
def test_corpus_log_keeps_every_entry(log):
    text = log.read_text(encoding="utf-8")
    transcript = import_file(log)
    assert len(transcript.events) == text.count("\n#### ")
    assert sum(1 for _ in transcript.frames()) == text.count("```javascript\n")
    expected = "legacy" if "legacy" in log.relative_to(CORPUS).parts else "json-rpc"
    assert transcript.protocol == expected


STAMPED = """
#### initiator opens a WebSocket connection (2019-03-13 11:04:45.386)
```
ws://localhost:3014/channel?protocol=json-rpc&role=initiator
```

#### initiator <--- node (2019-03-13 11:04:45.496)
```javascript
{
  "jsonrpc": "2.0",
  "method": "channels.info",
  "params": {
    "channel_id": null,
    "data": {
      "event": "died"
    }
  },
  "version": 1
}
```

#### initiator info (2019-03-13 11:04:46.5)
> The fsm died
"""


def test_stamped_era_keeps_stamps_and_times():
    transcript = import_log(STAMPED, "stamped.md")
    assert transcript.source["era"] == "stamped"
    opened, frame, note = transcript.events
    assert opened.stamp == "2019-03-13 11:04:45.386"
    # milliseconds are not zero-padded: ".5" is 5 ms, ".496" is 496 ms
    assert frame.t == pytest.approx(0.110)
    assert note.t == pytest.approx(1.0 - 0.386 + 0.005)
    assert render(transcript, layout="node") == STAMPED


ERA_2018 = """
#### initiator init (2018-10-24 12:59:55.4)
```
ws://localhost:3014/channel?protocol=legacy&role=initiator
```

#### responder init (2018-10-24 12:59:55.8)
```
ws://localhost:3014/channel?protocol=legacy&role=responder
```

#### responder <--- (2018-10-24 12:59:56.11)
```javascript
{
  "action": "info",
  "payload": {
    "event": "channel_open"
  }
}
```

#### initiator ---> (2018-10-24 12:59:59.315)
```javascript
{
  "action": "get",
  "payload": {
    "accounts": []
  },
  "tag": "balances"
}
```

#### initiator: (2018-10-24 13:00:05.482)
> Channel is `open` and ready to use
"""


def test_2018_era_headings():
    transcript = import_log(ERA_2018, "old.md")
    assert transcript.source["era"] == "2018"
    assert transcript.protocol == "legacy"
    kinds = [type(e) for e in transcript.events]
    assert kinds == [Open, Open, Frame, Frame, Note]
    assert [e.conn for e in transcript.events] == [0, 1, 1, 0, 0]
    assert transcript.events[2].info_event == "channel_open"
    assert transcript.events[3].sender == "client" and transcript.events[3].method == "get.balances"
    assert render(transcript, layout="node") == ERA_2018


def test_mid_channel_start_implies_connections():
    log = "\n#### responder <--- node\n```javascript\n{\n  \"a\": 1\n}\n```\n\n#### initiator closes WebSocket connection\n"
    transcript = import_log(log, "mid.md")
    frame, close = transcript.events
    assert isinstance(frame, Frame) and frame.conn == 0 and frame.role == "responder"
    assert isinstance(close, Close) and close.conn == 1 and close.role == "initiator"
    assert render(transcript, layout="node") == log


def test_json_the_node_style_does_not_reproduce_is_kept_verbatim():
    log = '\n#### initiator ---> node\n```javascript\n{"compact": true}\n```\n'
    (frame,) = import_log(log, "x.md").events
    assert frame.text == '{"compact": true}' and frame.data is None
    assert render(import_log(log, "x.md"), layout="node") == log


def test_seed_003_is_the_corpus_init_per_group_session(seeds, corpus):
    """Seed 003 (scraped page) records the same test case as both_sign/init_per_group.md: per role the
    same directions, methods and info events (ids, accounts and interleaving across roles differ)."""
    scraped = import_file(seeds / "003_6336cda6b7a60b3a.txt")
    original = import_file(corpus / "json-rpc" / "both_sign" / "init_per_group.md")
    assert scraped.source["era"] == "scraped" and scraped.name == "init_per_group"

    def per_role(transcript, role):
        return [(type(e).__name__, getattr(e, "sender", None), getattr(e, "method", None),
                 getattr(e, "info_event", None), getattr(e, "text", None) if isinstance(e, Note) else None)
                for e in transcript.events if e.role == role]

    for role in ("initiator", "responder"):
        got, want = per_role(scraped, role), per_role(original, role)
        # the scrape lost Markdown backticks in info sentences
        want = [w[:4] + ((w[4] or "").replace("`", "") or None,) for w in want]
        assert got == want, role
    # the page ends with both participants' channel open
    assert [f.info_event for _, f in scraped.frames() if f.info_event][-2:] == ["open", "open"]


@pytest.mark.parametrize("text, line, needle", [
    ("", 1, "empty file"),
    ("\n\n  \n", 1, "empty file"),
    ("\n#### initiator waves\n", 2, "unknown heading"),
    ("\n#### initiator ---> node\n```javascript\n{\n  \"a\": 1,\n  \"b\" 2\n}\n```\n", 6, "broken JSON"),
    ("\n#### initiator ---> node\n```javascript\n{}\n", 3, "unterminated fence"),
    ("\n#### initiator ---> node\n{}\n", 3, "fence"),
    ("\n#### initiator info\nnot quoted\n", 3, "> sentence"),
    ("\n#### initiator closes WebSocket connection\nstray\n", 3, "unexpected text"),
    ("hello\n", 1, "no log entries"),
    ("\n#### initiator opens a WebSocket connection\n```\nnot a url\n```\n", 4, "URL"),
])
def test_errors_name_file_and_line(text, line, needle):
    with pytest.raises(LogImportError) as info:
        import_log(text, "bad.md")
    assert info.value.where == f"bad.md:{line}"
    assert needle in info.value.message


def test_overlapping_connections_of_one_role_are_told_apart_by_channel_id(corpus):
    """sc_ws_close_mutual opens each participant's second channel before the first has wound down:
    every node frame lands on the connection of its channel, each connection opens and closes once."""
    transcript = import_file(corpus / "json-rpc" / "sc_ws_close_mutual.md")
    conns = transcript.connections()
    assert [c.role for c in conns] == ["initiator", "responder", "initiator", "responder"]
    channels = []
    for c in conns:
        assert c.open is not None and c.close is not None
        assert c.events[0] is c.open and c.events[-1] is c.close
        ids = {f.channel_id for f in c.frames if f.sender == "node"} - {None}
        assert len(ids) == 1
        channels.append(ids.pop())
    assert channels[0] == channels[1] != channels[2] == channels[3]


# -- the node layout round-trips any frame (issue 16) ------------------------------------------------

def test_node_layout_round_trips_any_frame_text_and_forges_nothing():
    """Hostile transcript -> node layout -> import: the same events (text frames that are not JSON, JSON
    text kept verbatim, binary frames, notes with Markdown and carriage returns, URLs with backticks); a text
    frame holding a fence and a heading stays one frame; rendering the import again gives the same bytes."""
    from hostile import FORGERY, content, hostile

    t = hostile()
    text = render(t, layout="node")
    back = import_log(text, "hostile.md")
    assert content(back) == content(t)
    assert sum(1 for _ in back.frames()) == sum(1 for _ in t.frames())
    assert [f.text for _, f in back.frames() if f.text == FORGERY] == [FORGERY]
    assert render(back, layout="node") == text
    assert "\n#### injected heading\n" not in text.replace("\n#### injected heading\n````", "")


def test_node_layout_round_trips_through_the_cli(tmp_path):
    from click.testing import CliRunner
    from hostile import content, hostile

    from chanlog.cli import main
    from chanlog.transcript import dumps, load

    source = tmp_path / "hostile.yaml"
    source.write_text(dumps(hostile()), encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(main, ["render", str(source), "--layout", "node", "-o", str(tmp_path / "h.md")])
    assert done.exit_code == 0, done.output
    done = runner.invoke(main, ["import", str(tmp_path / "h.md"), "-o", str(tmp_path / "back.yaml")])
    assert done.exit_code == 0, done.output
    assert content(load(tmp_path / "back.yaml")) == content(load(source))
