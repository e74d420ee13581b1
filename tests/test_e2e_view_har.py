"""End to end, real processes on loopback: the ``chanlog`` view read through mitmweb's own HTTP API, and the
HAR mitmproxy itself writes (``hardump``) imported equal to the recorder's transcript."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from chanlog.cli.pipeline import DemoError, find_mitmdump, free_port, run_demo
from chanlog.model import Frame
from chanlog.transcript import load

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "transcripts" / "init_per_group.yaml"
ADDON = REPO / "addons" / "channel.py"
TIMEOUT = 60.0


def mitm_tool(name: str) -> Path:
    try:
        mitmdump = find_mitmdump()
    except DemoError as exc:
        pytest.skip(str(exc))
    tool = mitmdump.with_name(name)
    if not tool.is_file():
        pytest.skip(f"{name} is not installed beside {mitmdump}")
    if not EXAMPLE.is_file():
        pytest.skip(f"the example transcript {EXAMPLE} is absent")
    return tool


class Procs:
    """Processes started by a test, stopped (SIGTERM, then SIGKILL) and reaped at its end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], pipe: bool = False) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=subprocess.PIPE if pipe else log, stderr=log,
                                stdin=subprocess.DEVNULL)
        proc.log = log  # type: ignore[attr-defined]
        self.started.append(proc)
        return proc

    def output(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.log.close()  # type: ignore[attr-defined]

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)


def chanlog(*args: str) -> list[str]:
    return [sys.executable, "-m", "chanlog", *args]


def fake_node(procs: Procs) -> str:
    node = procs.start("node", chanlog("replay", str(EXAMPLE), "--port", "0", "--sessions", "1",
                                       "--timeout", "60"), pipe=True)
    sel = selectors.DefaultSelector()
    sel.register(node.stdout, selectors.EVENT_READ)
    ready = sel.select(TIMEOUT)
    sel.close()
    line = node.stdout.readline().decode().strip() if ready else ""
    assert line.startswith("ws://"), f"the fake node printed {line!r}: {procs.output('node')}"
    return line


def wait_port(port: int, proc: subprocess.Popen, what: str, procs: Procs) -> None:
    import socket

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited: {procs.output(what)}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on {port}: {procs.output(what)}")


def test_mitmweb_serves_the_channel_view_of_recorded_frames(tmp_path):
    mitmweb = mitm_tool("mitmweb")
    procs = Procs(tmp_path)
    token = "chanlog-test-token"
    try:
        node_url = fake_node(procs)
        upstream = node_url.split("://", 1)[1].split("/", 1)[0]
        port, web_port = free_port(), free_port()
        args = [str(mitmweb), "-s", str(ADDON), "--mode", f"reverse:http://{upstream}@127.0.0.1:{port}",
                "--set", f"web_port={web_port}", "--set", "web_host=127.0.0.1", "--set", "web_open_browser=false",
                "--set", f"chanlog_dir={tmp_path / 'record'}"]
        if _mitmproxy_major() >= 12:
            args += ["--set", f"web_password={token}"]
        web = procs.start("mitmweb", args)
        wait_port(port, web, "mitmweb", procs)
        wait_port(web_port, web, "mitmweb", procs)
        play = subprocess.run(chanlog("play", str(EXAMPLE), "--url", f"ws://127.0.0.1:{port}/channel",
                                      "--timeout", "20"), capture_output=True, text=True, timeout=TIMEOUT)
        assert play.returncode == 0, play.stdout + play.stderr

        def get(path: str):
            req = urllib.request.Request(f"http://127.0.0.1:{web_port}{path}",
                                         headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                return json.load(resp)

        flows = [f for f in get("/flows.json") if f.get("websocket") and f["request"]["path"].startswith("/channel")]
        assert len(flows) == 2, [f["request"]["path"] for f in get("/flows.json")]
        initiator = next(f for f in flows if "role=initiator" in f["request"]["path"])
        messages = get(f"/flows/{initiator['id']}/messages/content/auto.json")
        texts = [_text(m) for m in messages]
        assert all(_view(m) in ("chanlog", "Aeternity channel frame") for m in messages), messages[0]
        original = load(EXAMPLE)
        sent = [f for f in original.events if isinstance(f, Frame) and f.role == "initiator"]
        assert len(texts) == len(sent)
        sign_at = next(i for i, f in enumerate(sent) if f.method == "channels.sign.initiator_sign")
        sign = texts[sign_at]
        head = sign.splitlines()[0]
        assert head.startswith("initiator <- node  channels.sign.initiator_sign  (session ")
        assert "connection 0" in head
        assert "signed_tx v1 (tag 11)" in sign and "transaction: channel_create_tx" in sign
        assert texts[sign_at + 1].startswith("initiator -> node  channels.initiator_sign")
        # the view by name, as the View menu asks for it
        named = get(f"/flows/{initiator['id']}/messages/content/chanlog.json")
        assert _text(named[sign_at]) == sign
        # another view on the same frame is mitmproxy's own (the view claims nothing it is not asked for)
        raw = get(f"/flows/{initiator['id']}/messages/content/raw.json")
        assert "initiator <- node" not in _text(raw[sign_at])
    finally:
        procs.stop_all()


def _mitmproxy_major() -> int:
    from mitmproxy.version import VERSION

    return int(VERSION.split(".")[0])


def _text(message: dict) -> str:
    """A message's view text in the web API's answer: ``text`` (mitmproxy 12) or ``lines`` (11)."""
    if "text" in message:
        return message["text"]
    return "\n".join("".join(part for _, part in line) for line in message["lines"])


def _view(message: dict) -> str:
    return message.get("view_name") or message.get("description") or ""


def test_mitmdump_hardump_of_the_demo_imports_equal_to_the_recording(tmp_path):
    mitmdump = mitm_tool("mitmdump")
    har = tmp_path / "capture.har"
    wrapper = tmp_path / "mitmdump-with-hardump"
    wrapper.write_text(f'#!/bin/sh\nexec "{mitmdump}" --set "hardump={har}" "$@"\n')
    wrapper.chmod(0o755)
    result = run_demo(tmp_path / "demo", mitmdump=wrapper, timeout=TIMEOUT)
    assert result.differences == []
    assert har.is_file(), "mitmdump wrote no HAR"
    doc = json.loads(har.read_text())
    assert doc["log"]["creator"]["name"] == "mitmproxy"
    assert sum(1 for e in doc["log"]["entries"] if e.get("_webSocketMessages")) == 2
    out = tmp_path / "imported"
    done = subprocess.run(chanlog("import", str(har), "-o", str(out)), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    imported = sorted(out.glob("*.yaml"))
    assert len(imported) == 1, done.stderr
    same = subprocess.run(chanlog("diff", str(result.recorded), str(imported[0])), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert same.returncode == 0, same.stdout + same.stderr
    recorded, from_har = load(result.recorded), load(imported[0])
    assert from_har.name == recorded.name  # same pairing, same session name (its start time and parameters)
    assert [f.t for _, f in from_har.frames()] == pytest.approx([f.t for _, f in recorded.frames()], abs=0.05)
    assert os.path.getsize(imported[0]) > 0
