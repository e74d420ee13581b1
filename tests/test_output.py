"""What a user sees: file modes of ``-o`` output, and ``--help`` as plain text."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE, need_example

from chanlog.cli import main


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_files_written_with_o_get_the_mode_a_shell_redirection_gives(tmp_path: Path, umask: int) -> None:
    need_example()
    chanlog = [sys.executable, "-m", "chanlog"]
    out, shell = tmp_path / "out.md", tmp_path / "shell.md"
    done = subprocess.run([*chanlog, "render", str(EXAMPLE), "-o", str(out)], capture_output=True, text=True,
                          timeout=60, preexec_fn=lambda: os.umask(umask))
    assert done.returncode == 0, done.stderr
    redirect = f'umask {umask:03o}; exec "$0" -m chanlog render "$1" > "$2"'
    subprocess.run(["sh", "-c", redirect, sys.executable, str(EXAMPLE), str(shell)], check=True, timeout=60)
    assert out.read_text() == shell.read_text()
    assert mode(out) == mode(shell) == 0o666 & ~umask


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    need_example()
    out = tmp_path / "out.md"
    out.write_text("old")
    out.chmod(0o604)
    done = subprocess.run([sys.executable, "-m", "chanlog", "render", str(EXAMPLE), "-o", str(out)],
                          capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(0o077))
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("# init_per_group\n") and mode(out) == 0o604
    assert not [p for p in tmp_path.iterdir() if p.name != "out.md"]  # no temporary file left


#: reST and Sphinx markup that must not reach a terminal
MARKUP = re.compile(r"``|:(?:class|func|data|mod|meth|attr):`")


def test_help_reads_as_plain_text() -> None:
    helps = {"chanlog": subprocess.run([sys.executable, "-m", "chanlog", "--help"], capture_output=True, text=True,
                                       timeout=60).stdout}
    for name in sorted(main.commands):
        done = subprocess.run([sys.executable, "-m", "chanlog", name, "--help"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, (name, done.stderr)
        helps[name] = done.stdout
    assert "addon-path" in helps and "mitmdump" in helps["chanlog"]
    for name, text in helps.items():
        assert not MARKUP.search(text), f"chanlog {name} --help: {MARKUP.search(text).group()!r} in\n{text}"


def test_only_foreign_deprecation_warnings_are_filtered(tmp_path: Path) -> None:
    """pyproject.toml's filters hide the DeprecationWarnings that mitmproxy's dependencies raise on import,
    and nothing else: the same message raised from another module still shows."""
    (tmp_path / "test_imports.py").write_text(
        "import importlib, pkgutil, warnings\n"
        "import chanlog\n\n"
        "def test_import_everything():\n"
        "    import mitmproxy.addons  # loads ldap3 and passlib, as mitmdump does\n"
        "    for info in pkgutil.walk_packages(chanlog.__path__, 'chanlog.'):\n"
        "        importlib.import_module(info.name)\n\n"
        "def test_the_same_message_from_elsewhere():\n"
        "    warnings.warn('tagMap is deprecated. Please use TAG_MAP instead.', DeprecationWarning)\n")
    from conftest import REPO

    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
                           str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "2 passed, 1 warning" in done.stdout, done.stdout
    summary = done.stdout.split("warnings summary", 1)[1]
    assert "test_imports.py:" in summary and "ldap3" not in summary and "passlib" not in summary
