"""A new user's first hour: the README's recording command as written, and the wheel in a fresh virtualenv.

* The recording command is read out of README.md ("Recording"), so the test fails when the README
  changes without it; only its placeholders (``NODE:3014``, the listen port 8080) are replaced, and it runs
  through ``sh`` exactly as a user pastes it, ``$(chanlog addon-path)`` included. A real fake node
  (``chanlog replay``) sits behind it and ``chanlog play`` plays both participants through it.
* The wheel is built from this checkout, installed into a fresh virtualenv outside the clone (first
  without extras, then with ``[record]``), and that installation records the example with the same
  README command (its own ``mitmdump``, its own shipped recorder script) and runs ``chanlog demo``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import EXAMPLE, REPO, need_example

from chanlog.cli.pipeline import free_port
from chanlog.diff import diff_transcripts
from chanlog.model import Open
from chanlog.transcript import load

pytestmark = pytest.mark.e2e

#: Seconds any one process of these tests may take.
STEP = 60
BIN = Path(sys.executable).parent


def readme_recording_command() -> str:
    """The ``mitmdump`` line of the first ``sh`` block in README.md's "Recording" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n### Recording\n", 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "README.md, Recording: no sh block"
    lines = [line for line in block.group(1).splitlines() if line.startswith("mitmdump ")]
    assert len(lines) == 1, "README.md, Recording: one mitmdump command expected"
    return lines[0]


def readme_chanlog_dir(command: str) -> str:
    """The ``chanlog_dir`` the README's recording command sets (relative to where it runs)."""
    found = re.findall(r"--set chanlog_dir=(\S+)", command)
    assert len(found) == 1, f"README.md, Recording: one --set chanlog_dir=DIR expected: {command}"
    return found[0]


def test_the_readmes_recording_example_writes_to_its_own_folder() -> None:
    """Run in a clone, the README's command must not write next to the shipped example transcripts, and
    git ignores what it writes."""
    folder = (REPO / readme_chanlog_dir(readme_recording_command())).resolve()
    assert folder.is_relative_to(REPO) and folder != (REPO / "transcripts").resolve()
    if (REPO / ".gitignore").is_file():  # a clone (an sdist has none)
        assert f"/{folder.relative_to(REPO).as_posix()}/" in (REPO / ".gitignore").read_text().splitlines()


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as in /proc/net/tcp*) of the sockets listening on TCP ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            address, _, hex_port = cols[1].rpartition(":")
            if cols[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@dataclass
class Recording:
    command: str
    """The command as run (placeholders filled)."""
    transcripts: list[Path]
    output: str
    """What mitmdump printed (standard output and error)."""
    listening: set[str]
    """Local addresses the proxy listened on (hex, /proc/net/tcp*)."""


def record_with_readme_command(bindir: Path, cwd: Path, env: dict[str, str], extra: str = "") -> Recording:
    """Run the README's recording command (``bindir`` first on PATH, in ``cwd``) in front of a fake node
    serving the example, play the example through it, stop it with SIGINT (Ctrl-C) and collect what it
    wrote into ``cwd``. ``extra`` is appended to the command."""
    command = readme_recording_command()
    assert command.count("NODE:3014") == 1 and command.count("--listen-port 8080") == 1, command
    env = {**env, "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}"}
    processes: list[subprocess.Popen] = []
    log = cwd / "mitmdump.out"
    try:
        node = subprocess.Popen([str(bindir / "chanlog"), "replay", str(EXAMPLE), "--port", "0", "--sessions", "1",
                                 "--timeout", str(STEP)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, cwd=cwd, env=env)
        processes.append(node)
        assert node.stdout is not None
        url = node.stdout.readline().decode().strip()
        assert url.startswith("ws://127.0.0.1:"), url
        port = free_port()
        command = command.replace("NODE:3014", url.split("://")[1].split("/")[0]).replace(
            "--listen-port 8080", f"--listen-port {port}") + extra
        with open(log, "wb") as out:
            proxy = subprocess.Popen(["sh", "-c", "exec " + command], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=cwd, env=env)
        processes.append(proxy)
        listening: set[str] = set()
        for _ in range(STEP * 10):
            assert proxy.poll() is None, f"{command}\nexited: {log.read_text()}"
            listening = listening_addresses(port)
            if listening:
                break
            subprocess.run(["sleep", "0.1"])
        assert listening, f"{command}\ndid not listen: {log.read_text()}"
        play = subprocess.run([str(bindir / "chanlog"), "play", str(EXAMPLE), "--url",
                               f"ws://127.0.0.1:{port}/channel", "--timeout", "20"],
                              capture_output=True, text=True, timeout=STEP, cwd=cwd, env=env)
        assert play.returncode == 0, play.stderr
        assert node.wait(STEP) == 0
        proxy.send_signal(signal.SIGINT)
        proxy.wait(STEP)
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Recording(command, sorted((cwd / readme_chanlog_dir(command)).glob("*.yaml")),
                     log.read_text(errors="replace"), listening)


def clean_env() -> dict[str, str]:
    """This process's environment without anything pointing Python at this checkout or virtualenv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def need_mitmdump(bindir: Path) -> None:
    need_example()
    if not (bindir / "mitmdump").is_file():
        pytest.skip(f"missing mitmdump: expected in {bindir} (the record extra: pip install '.[record]')")


def check_recording(rec: Recording) -> None:
    assert rec.listening == {"0100007F"}, f"{rec.command}: listening on {rec.listening}, not only 127.0.0.1"
    assert len(rec.transcripts) == 1, rec.output
    recorded = load(rec.transcripts[0])
    assert recorded.source["kind"] == "capture"
    assert diff_transcripts(load(EXAMPLE), recorded) == []
    # quiet: no per-message lines, no connection lines, no query URLs
    for noise in ("initiator_id=", "client connect", "channels."):
        assert noise not in rec.output, rec.output


def test_the_readmes_recording_command_records_on_loopback_quietly(tmp_path: Path) -> None:
    need_mitmdump(BIN)
    rec = record_with_readme_command(BIN, tmp_path, clean_env())
    assert " -q " in rec.command and "--listen-host 127.0.0.1" in rec.command
    check_recording(rec)


def test_chanlog_drop_params_leaves_named_parameters_out_of_recorded_urls(tmp_path: Path) -> None:
    need_mitmdump(BIN)
    rec = record_with_readme_command(BIN, tmp_path, clean_env(),
                                     " --set chanlog_drop_params=host,initiator_amount")
    assert len(rec.transcripts) == 1, rec.output  # pairing still used them: one session, both roles
    recorded, original = load(rec.transcripts[0]), load(EXAMPLE)
    urls = [e.url for e in recorded.events if isinstance(e, Open)]
    assert len(urls) == len([e for e in original.events if isinstance(e, Open)]) >= 2
    assert {e.role for e in recorded.events if isinstance(e, Open)} == {"initiator", "responder"}
    for url in urls:
        assert "host=" not in url and "initiator_amount=" not in url, url
        assert "responder_amount=40000000000000" in url and "initiator_id=ak_" in url, url


def test_a_bad_drop_params_value_stops_the_proxy_with_the_reason(tmp_path: Path) -> None:
    need_mitmdump(BIN)
    done = subprocess.run([str(BIN / "mitmdump"), "-q", "--listen-host", "127.0.0.1", "--listen-port",
                           str(free_port()), "-s", str(REPO / "chanlog" / "addons" / "channel.py"),
                           "--set", f"chanlog_dir={tmp_path}", "--set", "chanlog_drop_params=a=b"],
                          capture_output=True, text=True, timeout=STEP, cwd=tmp_path)
    assert done.returncode != 0
    assert "chanlog_drop_params: parameter name 'a=b' holds '='" in done.stdout + done.stderr


def installed(venv: Path) -> tuple[int, int]:
    """(distributions besides chanlog, bytes of their files) in ``venv``'s site-packages (made without pip,
    filled with ``--no-compile``: no bytecode caches)."""
    (site,) = venv.glob("lib/python3*/site-packages")
    names = {d.name.split("-")[0].lower() for d in site.glob("*.dist-info")} - {"chanlog"}
    return len(names), sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink())


def readme_counts() -> tuple[int, int, int, int]:
    """The package counts and sizes the README's Quickstart gives: (packages, MB, more packages, MB more)."""
    text = " ".join((REPO / "README.md").read_text().split())
    base = re.search(r"\((\d+) packages besides chanlog, (\d+) MB of files\b", text)
    more = re.search(r"\((\d+) more packages, (\d+) MB more\)", text)
    assert base and more, "README.md, Quickstart: the package counts are not where this test reads them"
    return int(base[1]), int(base[2]), int(more[1]), int(more[2])


def check_readme_counts(base: tuple[int, int], full: tuple[int, int]) -> None:
    """The README's counts hold for what pip installed here, within what a new release of a dependency may
    change (2 packages or 10 %, 25 % of the size)."""
    stated = readme_counts()
    measured = (base[0], base[1] / 1e6, full[0] - base[0], (full[1] - base[1]) / 1e6)
    report = (f"README says {stated[0]} packages / {stated[1]} MB, then {stated[2]} / {stated[3]} MB more; measured "
              f"{measured[0]} / {measured[1]:.0f} MB, then {measured[2]} / {measured[3]:.0f} MB more")
    for i in (0, 2):
        assert abs(stated[i] - measured[i]) <= max(2, measured[i] / 10), report
    for i in (1, 3):
        assert abs(stated[i] - measured[i]) <= measured[i] / 4, report


def test_the_wheel_installs_into_a_fresh_venv_and_records_with_its_shipped_addon(tmp_path: Path) -> None:
    need_example()
    try:
        import hatchling  # noqa: F401  (the build backend; in the test extra)
    except ImportError:
        pytest.skip(f"missing hatchling: expected in {sys.prefix} (the build backend, in the test extra)")
    env = clean_env()
    dist, venv, work = tmp_path / "dist", tmp_path / "fresh", tmp_path / "work"
    work.mkdir()
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(dist), str(REPO)], capture_output=True, text=True, timeout=STEP * 2, env=env)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("chanlog-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=STEP)
    bindir = venv / "bin"

    def pip_install(requirement: str) -> None:
        # this virtualenv's pip installs into the fresh one; dependencies come from pip's configured index
        done = subprocess.run([sys.executable, "-m", "pip", "--python", str(bindir / "python"), "install", "-q",
                               "--no-compile", requirement], capture_output=True, text=True, timeout=STEP * 5,
                              cwd=work, env=env)
        if done.returncode != 0:
            tail = " | ".join(line for line in done.stderr.strip().splitlines()
                              if not line.startswith("WARNING: Location"))[-300:]
            pytest.skip(f"pip cannot install the dependencies of {requirement} (no package index?): {tail}")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, timeout=STEP, cwd=work, env=env)

    # without extras: decode and render work, mitmproxy is not there, addon-path says what to install
    pip_install(str(wheel))
    base = installed(venv)
    where = run(str(bindir / "python"), "-c", "import chanlog; print(chanlog.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(venv), where  # the wheel, not this checkout
    assert run(str(bindir / "python"), "-c", "import mitmproxy").returncode != 0
    rendered = run(str(bindir / "chanlog"), "render", str(EXAMPLE))
    assert rendered.returncode == 0 and rendered.stdout.startswith("# init_per_group\n"), rendered.stderr
    shown = run(str(bindir / "chanlog"), "addon-path")
    addon = Path(shown.stdout.strip())
    assert shown.returncode == 0 and addon.is_relative_to(venv) and addon.name == "channel.py", shown
    assert "mitmproxy is not installed; recording needs it: pip install 'chanlog[record]'" in shown.stderr
    assert "from chanlog.record.addon import ChannelRecorder" in addon.read_text()

    # with the record extra: the README's recording command, in the fresh environment only
    pip_install(f"{wheel}[record]")
    assert (bindir / "mitmdump").is_file()
    check_readme_counts(base, installed(venv))
    shown = run(str(bindir / "chanlog"), "addon-path")
    assert shown.stdout.strip() == str(addon) and shown.stderr == ""
    rec = record_with_readme_command(bindir, work, {**env, "PATH": f"{bindir}{os.pathsep}/usr/bin:/bin"})
    check_recording(rec)

    # and the demo, outside any checkout: the example copied into the wheel, the shipped script
    demo = run(str(bindir / "chanlog"), "demo", "-o", str(work / "demo.md"), "--timeout", "30")
    assert demo.returncode == 0, demo.stderr
    assert f"recorder: mitmdump -s {addon} " in demo.stderr and "diff against the original: equal" in demo.stderr
    assert (work / "demo.md").read_text().startswith("# init_per_group\n")
