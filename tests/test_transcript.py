"""Transcript files: YAML round trip, safe loading, version upgrades, errors with file:line."""

from __future__ import annotations

import io

import pytest
from conftest import EXAMPLE

from chanlog import transcript as T
from chanlog.errors import TranscriptError
from chanlog.model import Close, Frame, Open, Transcript


def sample() -> Transcript:
    return Transcript(name="s", events=[
        Open(role="initiator", conn=0, t=0.0, url="ws://127.0.0.1:3014/channel?role=initiator"),
        Frame.from_wire('{"jsonrpc":"2.0","method":"channels.info","params":{"data":{"event":"fsm_up"}}}',
                        role="initiator", conn=0, sender="node", t=0.25),
        Frame.from_wire("ping?", role="initiator", conn=0, sender="client", t=0.5),
        Frame.from_wire(b"\x01\x02", role="initiator", conn=0, sender="client", t=0.75),
        Frame.from_wire('{"big":-576460752303421951,"s":"2.0","n":null,"yes":"yes"}', role="initiator", conn=0,
                        sender="node"),
        Close(role="initiator", conn=0, t=1.0, code=1000, closed_by="node"),
    ])


def test_round_trip_gives_back_every_wire_text():
    original = sample()
    again = T.loads(T.dumps(original), "x.yaml")
    assert again == original
    assert [f.wire() for _, f in again.frames()] == [f.wire() for _, f in original.frames()]


def test_example_transcript_loads():
    if not EXAMPLE.exists():
        pytest.skip("transcripts/init_per_group.yaml is missing")
    t = T.load(EXAMPLE)
    assert t.name == "init_per_group" and t.protocol == "json-rpc"
    assert {e.role for e in t.events} == {"initiator", "responder"}


def test_atomic_dump_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "deep" / "t.yaml"
    T.dump(sample(), path)
    T.dump(sample(), path)
    assert [p.name for p in path.parent.iterdir()] == ["t.yaml"]
    assert T.load(path) == sample()


def test_load_from_stream():
    assert T.load(io.StringIO(T.dumps(sample()))) == sample()


def test_unsafe_yaml_is_refused():
    with pytest.raises(TranscriptError):
        T.loads("chanlog: 1\nevents: !!python/object/apply:os.system ['true']\n", "evil.yaml")


@pytest.mark.parametrize("text, line, needle", [
    ("", 1, "empty file"),
    ("- a\n- b\n", 1, "mapping"),
    ("name: x\nevents: []\n", 1, "chanlog: <version>"),
    ("chanlog: 99\nevents: []\n", 1, "newer"),
    ("chanlog: one\nevents: []\n", 1, "integer"),
    ("chanlog: 1\nevents:\n  - [unclosed\n", 4, "YAML syntax"),
    ("chanlog: 1\nprotocol: soap\nevents: []\n", 2, "protocol"),
    ("chanlog: 1\nevents:\n- event: open\n  role: initiator\n  conn: 0\n  url: ws://x\n"
     "- event: frame\n  role: initiator\n  conn: 0\n  from: nobody\n  data: {}\n", 10, "from must be"),
    ("chanlog: 1\nevents:\n- event: frame\n  role: initiator\n  conn: 0\n  from: node\n", 3, "one of data"),
])
def test_errors_name_file_and_line(text, line, needle):
    with pytest.raises(TranscriptError) as info:
        T.loads(text, "bad.yaml")
    assert info.value.where == f"bad.yaml:{line}"
    assert needle in info.value.message


def test_old_versions_upgrade_through_the_converter_table(monkeypatch):
    def from_0(doc):
        # a hypothetical format 0 called events "frames"
        return {"chanlog": 1, "name": doc["name"], "events": doc["frames"]}

    monkeypatch.setitem(T.UPGRADES, 0, from_0)
    t = T.loads("chanlog: 0\nname: old\nframes:\n- {event: open, role: responder, conn: 0, url: 'ws://x'}\n")
    assert t.name == "old" and t.events[0].url == "ws://x"


def test_version_without_converter_is_an_error():
    with pytest.raises(TranscriptError, match="no converter"):
        T.loads("chanlog: 0\nevents: []\n", "v0.yaml")
