"""``chanlog demo`` end to end: real fake node, real mitmdump with the addon, real player, on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import CORPUS, EXAMPLE, REPO, need, need_example

from chanlog.cli.pipeline import DemoError, find_mitmdump, run_demo
from chanlog.diff import diff_transcripts
from chanlog.render import render
from chanlog.transcript import load

pytestmark = pytest.mark.e2e


def need_pieces() -> None:
    need_example()
    try:
        find_mitmdump()
    except DemoError as exc:
        pytest.skip(str(exc))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_demo_command_records_the_example_through_mitmdump_and_renders_it(tmp_path: Path) -> None:
    need_pieces()
    out, keep = tmp_path / "flow.md", tmp_path / "keep"
    done = subprocess.run([sys.executable, "-m", "chanlog", "demo", "-o", str(out), "--keep", str(keep),
                           "--timeout", "30"], capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr
    recorded_files = sorted((keep / "record").glob("*.yaml"))
    assert len(recorded_files) == 1, done.stderr
    recorded = load(recorded_files[0])
    assert recorded.source["kind"] == "capture"
    assert diff_transcripts(load(EXAMPLE), recorded) == []
    assert out.read_text() == render(replace(recorded, name="init_per_group"), layout="doc")
    assert out.read_text().startswith("# init_per_group\n")  # the session's name, not the file stem
    assert recorded_files[0].stem != "init_per_group"
    assert "```mermaid\nsequenceDiagram" in out.read_text()
    for stage in ("fake node: ws://127.0.0.1:", f"recorder: mitmdump -s {subprocess_addon()} ", "play: init_per_group: played to the end",
                  "played to the end", "diff against the original: equal"):
        assert stage in done.stderr, stage


def test_run_demo_stops_every_process_and_reports_the_stages(tmp_path: Path) -> None:
    need_pieces()
    lines: list[str] = []
    result = run_demo(tmp_path, timeout=30, layout="node", progress=lines.append)
    assert result.differences == []
    assert result.document == render(replace(result.transcript, name=load(EXAMPLE).name), layout="node")
    assert [p.name for p in result.processes] == ["fake node", "mitmdump", "play"]
    assert all(p.returncode is not None and gone(p.pid) for p in result.processes)
    assert [p.returncode for p in result.processes if p.name != "mitmdump"] == [0, 0]
    assert "played to the end" in result.play_summary and "played to the end" in result.node_summary
    assert len(lines) == 6


def test_a_recorder_that_fails_is_named_and_the_fake_node_is_stopped(tmp_path: Path) -> None:
    need_pieces()
    with pytest.raises(DemoError) as caught:
        run_demo(tmp_path, timeout=20, mitmdump=Path("/bin/false"))
    assert caught.value.where == "mitmdump"
    assert "exited with status 1 before listening" in caught.value.message
    node = caught.value.processes[0]
    assert node.name == "fake node" and node.returncode is not None and gone(node.pid)


def test_missing_pieces_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = subprocess.run([sys.executable, "-m", "chanlog", "demo", "--mitmdump", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"chanlog: error: mitmdump: {tmp_path / 'nope'} is not an executable file" in done.stderr
    with pytest.raises(DemoError, match="absent.yaml: cannot read: No such file"):
        run_demo(tmp_path, transcript=tmp_path / "absent.yaml")
    import chanlog.cli.pipeline as pipeline

    monkeypatch.setattr(pipeline, "EXAMPLE", tmp_path / "no-example.yaml")
    with pytest.raises(DemoError, match="example transcript .* is missing; give one with --transcript"):
        run_demo(tmp_path)


def subprocess_addon() -> Path:
    """:data:`chanlog.cli.pipeline.ADDON` as a ``python -m chanlog`` child sees it: the installed package's (site-packages
    in CI, the clone with an editable install), which may differ from the one this test process imported."""
    done = subprocess.run([sys.executable, "-c", "from chanlog.cli.pipeline import ADDON; print(ADDON)"],
                          capture_output=True, text=True, timeout=60, check=True)
    return Path(done.stdout.strip())


def test_addon_path_prints_the_shipped_recorder_script() -> None:
    done = subprocess.run([sys.executable, "-m", "chanlog", "addon-path"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert done.stdout == f"{path}\n" and path == subprocess_addon() and path.is_file()
    assert path.parent.name == "addons" and path.parent.parent.name == "chanlog"
    assert sorted(p.name for p in path.parent.iterdir() if p.suffix == ".py") == ["channel.py"]
    # the shipped script and the clone's addons/channel.py load the same recorder
    for script in (path, REPO / "addons" / "channel.py"):
        if script.exists():
            namespace: dict = {}
            exec(compile(script.read_text(), str(script), "exec"), namespace)
            assert [type(a).__name__ for a in namespace["addons"]] == ["ChannelRecorder", "ChannelViewAddon"], script


def test_help_lists_exit_codes() -> None:
    done = subprocess.run([sys.executable, "-m", "chanlog", "demo", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    assert "Exit status: 0" in done.stdout and "--keep" in done.stdout and "--mitmdump" in done.stdout


def test_a_flow_with_two_channels_is_recorded_as_two_sessions_and_named(tmp_path: Path) -> None:
    need_pieces()
    log = need("a corpus log", CORPUS / "json-rpc" / "sc_ws_close_mutual.md")
    with pytest.raises(DemoError, match="the recorder wrote 2 transcripts") as caught:
        run_demo(tmp_path, transcript=log, timeout=30)
    assert caught.value.where == "recording"
    assert len(list((tmp_path / "record").glob("*.yaml"))) == 2
    assert all(p.returncode is not None for p in caught.value.processes)
