"""End to end, faults a second look found (issue 26): a second proxy on a folder another is recording into,
a read-only ``chanlog_dir``, what a killed proxy leaves on its standard error. Real ``mitmdump`` processes on
loopback, a real WebSocket node (tests/wsnode.py)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from wsnode import (
    ADDON,
    CHANLOG,
    MITMDUMP,
    REPO,
    Mitmdump,
    ScriptedNode,
    play_participant,
    synthetic_session,
)

from chanlog import transcript as tmod
from chanlog.record.journal import journal_paths, live_holder, scan

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not MITMDUMP.exists(), reason=f"mitmdump is not installed beside {sys.executable}"),
]

SCENARIO_TIMEOUT = 90.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, SCENARIO_TIMEOUT))


# -- a live journal is not a crashed one ----------------------------------------------------------------


def test_second_proxy_and_recover_leave_a_live_journal_alone(tmp_path: Path) -> None:
    """Proxy A records a session; half way (a client waiting, its connection open), proxy B starts on the same
    folder and ``chanlog recover`` is run on A's journal: B reports nothing unfinished, recover refuses (with
    and without --finish) naming A's process, and writes no transcript; A's transcript, written when the
    session ends, holds every frame."""
    out = tmp_path / "rec"
    looked: dict[str, object] = {}

    def second_look() -> None:
        (journal,) = journal_paths(out)
        looked["journal"] = journal
        looked["holder"] = live_holder(journal)
        other = Mitmdump(1, out, tmp_path / "second.log")
        other.start()
        other.stop()
        looked["second"] = other.output()
        looked["recover"] = subprocess.run([str(CHANLOG), "recover", str(journal)], capture_output=True,
                                           text=True, timeout=60)
        looked["finish"] = subprocess.run([str(CHANLOG), "recover", "--finish", str(journal)],
                                          capture_output=True, text=True, timeout=60)
        looked["yaml"] = sorted(p.name for p in out.glob("*.yaml"))
        looked["finished"] = scan(journal).finished

    async def echo(ws) -> None:  # the node: answers every message with one naming it
        async for message in ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "method": "channels.info", "params": {"echo": message}}))

    sent = [json.dumps({"jsonrpc": "2.0", "id": i, "method": "channels.update.new", "params": {"n": i}})
            for i in range(10)]

    async def scenario():
        async with serve(echo, "127.0.0.1", 0) as server:
            node_port = next(iter(server.sockets)).getsockname()[1]
            proxy = Mitmdump(node_port, out, tmp_path / "first.log")
            await asyncio.to_thread(proxy.start)
            try:
                url = (f"ws://127.0.0.1:{proxy.port}/channel?role=initiator&initiator_id=ak_i26&"
                       f"responder_id=ak_r26&port=3026&protocol=json-rpc")
                async with connect(url, ping_interval=None, open_timeout=30) as ws:
                    for i, text in enumerate(sent):
                        if i == 5:  # mid-session, the connection open: another proxy and recover look
                            await asyncio.to_thread(second_look)
                        await ws.send(text)
                        await ws.recv()
                deadline = time.monotonic() + 30
                while not list(out.glob("*.yaml")) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            finally:
                proxy.stop()
            return proxy

    proxy = run(scenario())
    assert proxy.proc is not None
    pid = proxy.proc.pid
    journal = looked["journal"]
    assert f"process {pid}" in str(looked["holder"])
    assert "unfinished journal" not in looked["second"] and "chanlog recover" not in looked["second"], looked["second"]
    for done in (looked["recover"], looked["finish"]):
        assert isinstance(done, subprocess.CompletedProcess)
        assert done.returncode == 1, done.stderr
        assert f"{journal}: a running recorder is writing this journal" in done.stderr
        assert f"(process {pid})" in done.stderr and "Traceback" not in done.stderr
    assert looked["yaml"] == [] and looked["finished"] is False  # nothing written where the session writes
    # the recorder itself then wrote the whole session and finished its journal
    (written,) = out.glob("*.yaml")
    frames = [(f.sender, f.wire()) for _, f in tmod.load(written).frames()]
    assert [w for s, w in frames if s == "client"] == sent and len(frames) == 2 * len(sent)
    assert scan(journal).finished and live_holder(journal) is None


def test_live_holder_is_another_process_holding_the_lock(tmp_path: Path) -> None:
    """A journal another process holds open for writing (a JournalWriter there) is live: not listed as
    unfinished, not recoverable; once that process is gone (SIGKILL), it is an unfinished journal again."""
    from chanlog.record.journal import find_unfinished

    folder = tmp_path / "rec"
    journal = folder / "journals" / "s.jsonl"
    code = ("import sys, time; from pathlib import Path; from chanlog.record.journal import JournalWriter\n"
            "w = JournalWriter(Path(sys.argv[1]), window=0)\n"
            "w.header('s', 's.yaml', '2026-01-01T00:00:00+00:00', 0.0)\n"
            "w.open_record(0, 'initiator', 1.0, 'ws://x/channel?role=initiator', n=1)\n"
            "print('ready', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(journal)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert f"process {holder.pid}" in str(live_holder(journal))
        assert find_unfinished(folder) == []
        done = subprocess.run([str(CHANLOG), "recover", str(journal)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and f"process {holder.pid}" in done.stderr, done.stderr
        assert not (folder / "s.yaml").exists()
    finally:
        holder.kill()
        holder.wait(10)
    assert live_holder(journal) is None
    (found,) = find_unfinished(folder)
    assert found.path == journal and found.connections == 1
    done = subprocess.run([str(CHANLOG), "recover", str(journal)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (folder / "s.yaml").is_file()


# -- a read-only chanlog_dir ---------------------------------------------------------------------------


def _read_only_mount_prefix(mount: Path) -> list[str]:
    """A command prefix running the rest in a private mount namespace where ``mount`` is a read-only tmpfs
    (``unshare``: nothing is mounted outside the command; as root or with user namespaces)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed: no read-only mount for the test")
    prefix = [unshare, "--mount"] if os.geteuid() == 0 else [unshare, "--map-root-user", "--mount"]
    probe = subprocess.run([*prefix, "sh", "-c", 'mount -t tmpfs -o ro,size=64k tmpfs "$0"', str(mount)],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs in a private namespace here: {probe.stderr.strip()}")
    return [*prefix, "sh", "-c", 'mount -t tmpfs -o ro,size=64k tmpfs "$0" && exec "$@"', str(mount)]


@pytest.mark.parametrize("sub, says", [("", "is not writable"), ("new", "cannot create")])
def test_read_only_chanlog_dir_is_one_line(tmp_path: Path, sub: str, says: str) -> None:
    """mitmdump with a ``chanlog_dir`` on a read-only filesystem (the folder itself, or one to create there)
    exits with status 1 and one line saying so: no traceback, no "cannot create" for a folder that exists."""
    mount = tmp_path / "ro"
    mount.mkdir()
    target = mount / sub if sub else mount
    prefix = _read_only_mount_prefix(mount)
    done = subprocess.run([*prefix, str(MITMDUMP), "-s", str(ADDON), "--listen-host", "127.0.0.1", "-p", "0",
                           "--set", f"chanlog_dir={target}"], capture_output=True, text=True, timeout=60, cwd=REPO)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and "OptionsError" not in output, output
    (line,) = [line for line in output.splitlines() if "chanlog_dir" in line]
    assert f"chanlog_dir: {says} {target}" in line or f"chanlog_dir: {target} {says}" in line, line
    assert "Read-only file system" in line


# -- what a killed proxy leaves --------------------------------------------------------------------------


def _descendants(pid: int) -> set[int]:
    """Process ids of every descendant of ``pid`` now (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to follow the proxy's children")
def test_sigkill_leaves_no_resource_tracker_complaint(tmp_path: Path) -> None:
    """A proxy whose transcript writers have started and written a session, killed with SIGKILL: once every
    process it started has ended, its standard error holds no ``resource_tracker`` complaint (leaked
    semaphores) and no warning."""
    session = synthetic_session(2, rounds=5)
    out = tmp_path / "rec"
    log = tmp_path / "mitmdump.log"

    async def scenario():
        async with ScriptedNode({session.params["port"]: session}) as node:
            proxy = Mitmdump(node.port, out, log)
            await asyncio.to_thread(proxy.start)
            try:
                await asyncio.gather(play_participant(session, "initiator", proxy.port),
                                     play_participant(session, "responder", proxy.port))
                await node.wait_finished()
                deadline = time.monotonic() + 30
                while not list(out.glob("*.yaml")) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert proxy.proc is not None
                started = _descendants(proxy.proc.pid)
            finally:
                proxy.kill()
            return started

    started = run(scenario())
    assert list(out.glob("*.yaml")), "the writers should have written the session"
    assert started, "the proxy should have started its transcript writer processes"
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in started if _alive(p)], "the writers should exit once the proxy is gone"
    text = log.read_text(errors="replace")
    assert "resource_tracker" not in text and "leaked" not in text, text
    assert "Warning" not in text, text
