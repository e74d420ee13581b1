"""End to end: a real ``mitmdump -s addons/channel.py`` on loopback between real WebSocket clients and a
real WebSocket server playing the node (tests/wsnode.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wsnode import (
    CHANLOG,
    MITMDUMP,
    Mitmdump,
    ScriptedNode,
    conn_keys,
    free_port,
    play_participant,
    synthetic_session,
    wire_by_connection,
)

from chanlog import transcript as tmod
from chanlog.model import Close, Transcript
from chanlog.record.journal import journal_paths, scan

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not MITMDUMP.exists(), reason=f"mitmdump is not installed beside {sys.executable}"),
]

EXAMPLE = Path(__file__).resolve().parents[1] / "transcripts" / "init_per_group.yaml"
SCENARIO_TIMEOUT = 90.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, SCENARIO_TIMEOUT))


def wait_for_files(folder: Path, pattern: str, count: int, timeout: float = 30.0) -> list[Path]:
    """The files matching ``pattern`` once there are ``count`` of them (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(folder.glob(pattern))
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def frame_ids(t: Transcript) -> list[tuple[tuple[str, int], str, int]]:
    """Each frame as ``((role, order), sender, n-th frame of that sender on that connection)``, in order."""
    keys = conn_keys(t)
    seen: dict[tuple[tuple[str, int], str], int] = {}
    out = []
    for _, f in t.frames():
        k = (keys[f.conn], f.sender)
        seen[k] = seen.get(k, 0) + 1
        out.append((keys[f.conn], f.sender, seen[k]))
    return out


def causal_pairs(t: Transcript) -> set[tuple[object, object]]:
    """(client frame, node frame) pairs where the client frame came first: a node that waits for each
    client message before going on keeps this order whatever the interleaving."""
    ids = frame_ids(t)
    return {(a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if a[1] == "client" and b[1] == "node"}


def example() -> Transcript:
    if not EXAMPLE.exists():
        pytest.skip(f"the example transcript {EXAMPLE} is absent")
    return tmod.load(EXAMPLE)


def test_init_per_group_recorded_through_mitmdump(tmp_path: Path) -> None:
    original = example()
    out = tmp_path / "rec"

    async def scenario():
        async with ScriptedNode({original.params["port"]: original}) as node:
            proxy = Mitmdump(node.port, out, tmp_path / "mitmdump.log")
            await asyncio.to_thread(proxy.start)
            try:
                played = await asyncio.gather(play_participant(original, "initiator", proxy.port),
                                              play_participant(original, "responder", proxy.port))
                await node.wait_finished()
                # written when both connections have closed, not only at shutdown
                files = await asyncio.to_thread(wait_for_files, out, "*.yaml", 1)
            finally:
                proxy.stop()
            return node, played, files, proxy.output()

    node, played, files, log = run(scenario())
    script = next(iter(node.scripts.values()))
    assert [p.error for p in played] == [None, None] and script.mismatches == []
    assert played[0].mismatches == [] and played[1].mismatches == []
    assert len(files) == 1, log
    recorded = tmod.load(files[0])
    # the same frames, byte for byte, on each connection
    assert wire_by_connection(recorded) == wire_by_connection(original)
    # in an order consistent with the original
    assert causal_pairs(original) <= causal_pairs(recorded)
    closes = [e for e in recorded.events if isinstance(e, Close)]
    assert sorted((c.role, c.code, c.closed_by) for c in closes) == [("initiator", 1000, "client"),
                                                                    ("responder", 1000, "client")]
    assert recorded.source["kind"] == "capture" and recorded.channel_id == original.channel_id
    assert all(scan(j).finished for j in journal_paths(out))
    result = subprocess.run([str(CHANLOG), "diff", str(EXAMPLE), str(files[0])], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recording session" in log and "wrote" in log


def test_sigkill_mid_session_then_recover(tmp_path: Path) -> None:
    session = synthetic_session(1, rounds=600)
    out = tmp_path / "rec"
    kill_after = 150

    async def scenario():
        async with ScriptedNode({session.params["port"]: session}) as node:
            proxy = Mitmdump(node.port, out, tmp_path / "mitmdump.log")
            await asyncio.to_thread(proxy.start)
            seen = 0

            def count() -> None:
                nonlocal seen
                seen += 1
                if seen == kill_after:
                    proxy.kill()

            try:
                played = await asyncio.gather(play_participant(session, "initiator", proxy.port, count),
                                              play_participant(session, "responder", proxy.port, count))
            finally:
                proxy.kill()
            await asyncio.sleep(0.2)  # let the node's handlers take in what was in flight
            return node, played

    node, played = run(scenario())
    assert all(p.error for p in played), "the session should have been cut by the kill"
    (journal,) = journal_paths(out)
    assert not scan(journal).finished and not list(out.glob("*.yaml"))

    recovered_path = tmp_path / "recovered.yaml"
    result = subprocess.run([str(CHANLOG), "recover", str(journal), "-o", str(recovered_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    recovered = wire_by_connection(tmod.load(recovered_path))

    # every frame that reached the other side had been journaled first, in order
    script = next(iter(node.scripts.values()))
    delivered: dict[tuple[object, str], list[object]] = {}
    for key, wire in script.received:
        delivered.setdefault((key, "client"), []).append(wire)
    for p in played:
        for key, wire in p.received:
            delivered.setdefault((key, "node"), []).append(wire)
    assert sum(len(v) for v in delivered.values()) >= kill_after // 2
    for (key, sender), wires in delivered.items():
        journaled = [w for s, w in recovered[key] if s == sender]
        assert journaled[:len(wires)] == wires, (key, sender)

    # a recorder started on the same folder reports the unfinished journal
    restarted = Mitmdump(1, out, tmp_path / "restart.log")
    restarted.start()
    restarted.stop()
    assert f"unfinished journal {journal}" in restarted.output()
    assert f"chanlog recover {journal}" in restarted.output()


def test_hundred_concurrent_sessions_through_one_proxy(tmp_path: Path) -> None:
    """100 sessions (200 connections) at once: every frame in its own session, in order, no cross-talk."""
    sessions = {str(13000 + i): synthetic_session(i, rounds=6) for i in range(100)}
    out = tmp_path / "rec"

    async def scenario():
        async with ScriptedNode(sessions) as node:
            proxy = Mitmdump(node.port, out, tmp_path / "mitmdump.log")
            await asyncio.to_thread(proxy.start)
            try:
                played = await asyncio.gather(*(play_participant(t, role, proxy.port)
                                                for t in sessions.values() for role in ("initiator", "responder")))
                await node.wait_finished()
            finally:
                await asyncio.to_thread(proxy.stop)
            return node, played, proxy.output()

    node, played, log = run(scenario())
    assert [p.error for p in played] == [None] * 200
    assert all(not s.mismatches for s in node.scripts.values())
    files = sorted(out.glob("*.yaml"))
    assert len(files) == 100, log
    ports = set()
    for path in files:
        recorded = tmod.load(path)
        port = recorded.params["port"]
        ports.add(port)
        assert wire_by_connection(recorded) == wire_by_connection(sessions[port]), path.name
        assert {e.role for e in recorded.events} == {"initiator", "responder"}
    assert ports == set(sessions)


def test_several_listeners_and_regular_proxy_mode(tmp_path: Path) -> None:
    """Initiator and responder through two reverse listeners of one mitmdump; another session through the
    same process in regular (HTTP proxy) mode: one transcript each, both participants in it."""
    split, regular = synthetic_session(1, rounds=2), synthetic_session(2, rounds=2)
    out = tmp_path / "rec"
    p1, p2, p3 = free_port(), free_port(), free_port()

    async def scenario():
        async with ScriptedNode({"13001": split, "13002": regular}) as node:
            modes = [f"reverse:http://127.0.0.1:{node.port}@127.0.0.1:{p1}",
                     f"reverse:http://127.0.0.1:{node.port}@127.0.0.1:{p2}", f"regular@127.0.0.1:{p3}"]
            proxy = Mitmdump(node.port, out, tmp_path / "mitmdump.log", modes=modes)
            await asyncio.to_thread(proxy.start)
            via = f"http://127.0.0.1:{p3}"
            try:
                played = await asyncio.gather(
                    play_participant(split, "initiator", p1), play_participant(split, "responder", p2),
                    play_participant(regular, "initiator", node.port, http_proxy=via),
                    play_participant(regular, "responder", node.port, http_proxy=via))
                await node.wait_finished()
            finally:
                await asyncio.to_thread(proxy.stop)
            return played, proxy.output(), node.port

    played, log, node_port = run(scenario())
    assert [p.error for p in played] == [None] * 4, log
    found = {t.params["port"]: t for t in map(tmod.load, out.glob("*.yaml"))}
    assert sorted(found) == ["13001", "13002"], log
    assert wire_by_connection(found["13001"]) == wire_by_connection(split)
    assert wire_by_connection(found["13002"]) == wire_by_connection(regular)
    opens = [e for e in found["13002"].events if e.__class__.__name__ == "Open"]
    assert all(o.url.startswith(f"ws://127.0.0.1:{node_port}/channel?") for o in opens)


# -- a full disk ----------------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 4 MiB tmpfs mounted for the test (root only; skipped otherwise), unmounted after."""
    import os

    mount = tmp_path / "fs"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the fault-injecting writer tests in test_capture.py "
                    "cover the same paths without it)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a ballast file until the filesystem is full; returns it."""
    ballast = folder / "ballast"
    with open(ballast, "wb", buffering=0) as fh:
        for size in (1 << 16, 1 << 12, 1 << 8, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError:
                continue
    return ballast


def test_full_disk_during_a_recorded_session(tmp_path: Path, small_fs: Path) -> None:
    """The journal's filesystem fills up mid-session, then space returns: the clients never notice, the log
    says it once, recording resumes, and the transcript says exactly which frames of which connection are
    missing."""
    session = synthetic_session(7, rounds=400)
    out = small_fs / "rec"
    fill_at, free_at = 200, 500

    async def scenario():
        async with ScriptedNode({session.params["port"]: session}) as node:
            # windows of 4 KiB: the one reserved before the disk filled up is soon used up
            proxy = Mitmdump(node.port, out, tmp_path / "mitmdump.log", chanlog_journal_window=4)
            await asyncio.to_thread(proxy.start)
            seen = 0
            ballast: list[Path] = []

            def count() -> None:
                nonlocal seen
                seen += 1
                if seen == fill_at:
                    ballast.append(fill(small_fs))
                elif seen == free_at:
                    ballast[0].unlink()
                    time.sleep(1.2)  # past the recorder's retry interval (everything here pauses)

            try:
                played = await asyncio.gather(play_participant(session, "initiator", proxy.port, count),
                                              play_participant(session, "responder", proxy.port, count))
                await node.wait_finished()
                files = await asyncio.to_thread(wait_for_files, out, "*.yaml", 1)
            finally:
                await asyncio.to_thread(proxy.stop)
            return node, played, files, proxy.output()

    node, played, files, log = run(scenario())
    # the clients kept working: every frame went through, as scripted
    assert [p.error for p in played] == [None, None] and [p.mismatches for p in played] == [[], []]
    assert not next(iter(node.scripts.values())).mismatches
    # one clear message for the session, and one when it recorded again
    errors = [line for line in log.splitlines() if "cannot write" in line]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "keeps forwarding" in errors[0], log
    assert log.count("recording again") == 1, log
    (path,) = files
    recorded = tmod.load(path)
    (gap,) = recorded.source["gaps"]
    assert recorded.source["incomplete"] is True and gap["frames"] > 0
    lost = {(x["role"], x["conn"]): range(x["frames"][0], x["frames"][1] + 1) for x in gap["lost"]}
    assert sum(len(r) for r in lost.values()) == gap["frames"] == recorded.source["lost_frames"]
    # exactly: the recorded frames of each connection are the original ones minus the numbers the gap names
    original, got = wire_by_connection(session), wire_by_connection(recorded)
    conns = {e.conn: e.role for e in recorded.events}
    for conn, role in conns.items():
        key = (role, 1)
        missing = lost.get((role, conn), range(0))
        expected = [w for i, w in enumerate(original[key], start=1) if i not in missing]
        assert got[key] == expected, (role, missing)
    frames_after_gap = sum(1 for _ in recorded.frames()) - gap["after_event"]
    assert frames_after_gap > 0  # recording resumed
