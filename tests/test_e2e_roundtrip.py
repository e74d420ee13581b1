"""End to end, the round trip: replay -> record -> diff.

A transcript (the example, and every log of ../shared/corpus imported with the importer) is served by
the fake node (:class:`chanlog.replay.FakeNode`), both participants are played by chanlog's client
player (strict mode) through ONE real ``mitmdump -s addons/channel.py`` in reverse mode, and what the
recorder wrote is compared with the original by :mod:`chanlog.diff`: equal, for every log. The
``chanlog diff`` command runs as a real process for the example (exit 0), and for an altered copy of
the recording (exit 1).

One mitmdump serves the whole module; each round trip starts an in-process fake node on the same
upstream port (the reverse proxy's target), plays, stops it, and waits until the recorder has written
every session of that play. Round trips run one after another: many corpus logs use the same channel
parameters, and the recorder would rightly pair participants of different logs played at once.

The recorder must write exactly one transcript per channel session, both participants in it, also for
logs whose two connections carry no channel parameters and are played one after the other (the
recorder merges the two sessions once they carry the same ``channel_id``). Only a log that opens
several channels one after another gives several transcripts, which are joined for the diff.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLE, corpus_params
from wsnode import CHANLOG, MITMDUMP, Mitmdump, free_port

from chanlog.diff import diff_transcripts
from chanlog.errors import ChanlogError
from chanlog.model import Frame, Transcript
from chanlog.record.journal import JournalInfo, journal_paths, scan
from chanlog.replay import FakeNode, SessionReport
from chanlog.replay.player import PlayReport, aplay
from chanlog.sources.nodelog import import_file
from chanlog.transcript import dump, load

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not MITMDUMP.exists(), reason=f"mitmdump is not installed beside {sys.executable}"),
]

#: Seconds the player and the fake node wait for any one frame before calling it a divergence.
STEP_TIMEOUT = 10.0
#: Seconds a whole play (fake node up, both participants played, fake node done) may take.
PLAY_TIMEOUT = 90.0
#: Seconds to wait, after a play, for the recorder to have closed and written every session of it.
SETTLE_TIMEOUT = 20.0


@dataclasses.dataclass
class RoundTrip:
    """One transcript played through the recorder, and what the recorder wrote for it."""

    original: Transcript
    """What was served and played."""
    report: PlayReport
    """The client player's report."""
    node_reports: list[SessionReport]
    """The fake node's session reports."""
    journals: list[JournalInfo]
    """The recorder's journals of the sessions this play opened, in the order the sessions started
    (not those merged into another: their records live on in the survivor's journal)."""
    settled: bool
    """True when every one of those sessions was closed and written within :data:`SETTLE_TIMEOUT`."""
    sessions: set[str]
    """The names of every session this play opened, merged ones included."""

    @property
    def paths(self) -> list[Path]:
        """The transcript files the recorder wrote, in the order the sessions started."""
        return [info.default_output() for info in self.journals]

    def out_paths(self) -> list[Path]:
        """Every transcript file in the recorder's folder written for a session of this play (by the
        name of its journal, merged sessions included)."""
        return [p for p in (self.paths[0].parent.glob("*.yaml") if self.paths else [])
                if p.stem in self.sessions]

    def recorded(self) -> list[Transcript]:
        """The transcripts the recorder wrote."""
        return [load(path) for path in self.paths]

    def check_played(self, log: str) -> None:
        """Fail unless the play reached the end on both sides and the recorder settled."""
        assert self.report.ok, "\n".join(d.format() for d in self.report.divergences)
        assert [r.ok() for r in self.node_reports] == [True], "\n".join(r.summary() for r in self.node_reports)
        assert self.settled, (f"the recorder did not finish the sessions of this play: "
                              f"{[(i.path.name, i.connections, i.closes, i.finished) for i in self.journals]}\n"
                              f"{log}")
        assert sum(i.connections for i in self.journals) == self.report.connections


def joined(transcripts: list[Transcript]) -> Transcript:
    """The recorder's transcripts of one play as one transcript: their events one after the other (in
    the order the sessions started), connection numbers offset so that each connection stays distinct.

    Only for a node log that opens several channels one after another (``sc_ws_abort_slash`` opens
    four; ``sc_ws_broken_open_params`` tries eight that never open): the recorder writes one transcript
    per channel session. The diff matches connections by role and order, so the joined transcript
    compares with the log as a whole. A log of one channel session gives one transcript, used as is.
    """
    assert transcripts, "the recorder wrote nothing"
    if len(transcripts) == 1:
        return transcripts[0]
    assert len({t.protocol for t in transcripts}) == 1, [t.protocol for t in transcripts]
    events = []
    offset = 0
    for t in transcripts:
        events += [dataclasses.replace(e, conn=e.conn + offset) for e in t.events]
        offset += 1 + max((e.conn for e in t.events), default=-1)
    return Transcript(name=transcripts[0].name, protocol=transcripts[0].protocol, events=events)


def channel_ids(t: Transcript) -> list[str]:
    """The distinct ``channel_id`` values the node's frames carry, in order of appearance: the channel
    sessions of a log (a log may open several channels one after another)."""
    ids: list[str] = []
    for _, frame in t.frames():
        if frame.sender == "node" and frame.channel_id and frame.channel_id not in ids:
            ids.append(frame.channel_id)
    return ids


class Recorder:
    """The module's one ``mitmdump -s addons/channel.py``: a reverse proxy to ``127.0.0.1:upstream``,
    where each round trip's fake node listens in turn, recording into ``out``."""

    def __init__(self, folder: Path) -> None:
        self.upstream = free_port()
        self.out = folder / "rec"
        self.proxy = Mitmdump(self.upstream, self.out, folder / "mitmdump.log")

    @property
    def url(self) -> str:
        """Where the participants connect: the proxy's channel endpoint."""
        return f"ws://127.0.0.1:{self.proxy.port}/channel"

    def round_trip(self, original: Transcript) -> RoundTrip:
        """Serve ``original`` with a fake node behind the proxy, play both participants through the
        proxy (strict mode), and wait for the recorder to write the sessions of this play."""
        before = set(journal_paths(self.out))
        report, node_reports = asyncio.run(asyncio.wait_for(self._play(original), PLAY_TIMEOUT))
        journals, settled = self._settle(before, report.connections)
        sessions = {p.stem for p in journal_paths(self.out) if p not in before}
        return RoundTrip(original, report, node_reports, journals, settled, sessions)

    async def _play(self, original: Transcript) -> tuple[PlayReport, list[SessionReport]]:
        async with FakeNode(original, port=self.upstream, timeout=STEP_TIMEOUT) as node:
            report = await aplay(original, self.url, mode="strict", timeout=STEP_TIMEOUT)
            await node.wait(STEP_TIMEOUT)
        return report, node.reports

    def _settle(self, before: set[Path], connections: int) -> tuple[list[JournalInfo], bool]:
        """The journals of the sessions opened since ``before`` once they hold ``connections``
        connections, all closed and written (bounded wait); whether that state was reached."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            infos, readable = [], True
            for path in journal_paths(self.out):
                if path in before:
                    continue
                try:
                    info = scan(path)
                except ChanlogError:  # created, header not yet on disk
                    readable = False
                    continue
                if info.merged_into is None:
                    infos.append(info)
            settled = readable and sum(i.connections for i in infos) >= connections and all(
                i.finished and i.closes == i.connections and i.default_output().exists() for i in infos)
            if settled or time.monotonic() > deadline:
                return sorted(infos, key=lambda i: float(i.header.get("t0", 0.0))), settled
            time.sleep(0.02)


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory):
    """One running mitmdump with the recorder for the whole module."""
    rec = Recorder(tmp_path_factory.mktemp("roundtrip"))
    rec.proxy.start()
    try:
        yield rec
    finally:
        rec.proxy.stop()


def altered(t: Transcript) -> tuple[Transcript, int]:
    """A copy of ``t`` whose first ``channels.info`` event from the node names another event, and that
    frame's number (a difference the diff must report: info events are not volatile)."""
    events = list(t.events)
    number = 0
    for i, event in enumerate(events):
        if isinstance(event, Frame):
            number += 1
            if event.sender == "node" and event.method == "channels.info":
                data = json.loads(json.dumps(event.data))
                data["params"]["data"]["event"] = "altered_by_the_test"
                events[i] = Frame.from_wire(json.dumps(data), role=event.role, conn=event.conn, sender="node",
                                            t=event.t)
                return dataclasses.replace(t, events=events), number
    raise AssertionError("no channels.info frame to alter")


def test_example_round_trip_and_the_diff_command(recorder: Recorder, tmp_path: Path) -> None:
    if not EXAMPLE.exists():
        pytest.skip(f"the example transcript {EXAMPLE} is absent")
    original = load(EXAMPLE)
    trip = recorder.round_trip(original)
    trip.check_played(recorder.proxy.output())
    (path,) = trip.paths
    (recorded,) = trip.recorded()
    assert {e.role for e in recorded.events} == {"initiator", "responder"}
    assert recorded.source["kind"] == "capture"
    assert diff_transcripts(original, recorded) == []

    equal = subprocess.run([str(CHANLOG), "diff", str(EXAMPLE), str(path)], capture_output=True, text=True,
                           timeout=60)
    assert equal.returncode == 0, equal.stdout + equal.stderr
    assert equal.stdout == "" and "equal:" in equal.stderr

    changed, number = altered(recorded)
    changed_path = tmp_path / "altered.yaml"
    dump(changed, changed_path)
    assert diff_transcripts(original, changed) != []
    differs = subprocess.run([str(CHANLOG), "diff", str(EXAMPLE), str(changed_path)], capture_output=True,
                             text=True, timeout=60)
    assert differs.returncode == 1, differs.stdout + differs.stderr
    added = [line for line in differs.stdout.splitlines() if line.startswith("+ ")]
    assert len(added) == 1 and f"frame {number}]" in added[0] and "altered_by_the_test" in added[0], differs.stdout


@pytest.mark.parametrize("log", corpus_params())
def test_corpus_log_round_trip(recorder: Recorder, log: Path) -> None:
    original = import_file(log)
    trip = recorder.round_trip(original)
    trip.check_played(recorder.proxy.output())
    recorded = trip.recorded()
    assert all(t.source["kind"] == "capture" for t in recorded)
    assert not [p for p in trip.out_paths() if p not in trip.paths], "a transcript of a merged session was left"
    ids = channel_ids(original)
    # exactly one transcript per channel session, holding both participants when the log has both
    assert [t.source.get("channel_id") for t in recorded if t.source.get("channel_id")] == ids, (
        [p.name for p in trip.paths])
    if len(ids) == 1:
        (one,) = recorded
        assert {c.role for c in one.connections()} == {c.role for c in original.connections()}
    lines = diff_transcripts(original, joined(recorded), log.name, "recorded")
    assert lines == [], "\n".join(lines[:60])
