"""CLI: import and render through click, stdin/stdout, one-line errors and exit codes, --help everywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, REPO

from chanlog.cli import main

LOG = """
#### initiator opens a WebSocket connection
```
ws://localhost:3014/channel?protocol=json-rpc&role=initiator
```

#### initiator <--- node
```javascript
{
  "jsonrpc": "2.0",
  "method": "channels.info",
  "params": {
    "channel_id": null,
    "data": {
      "event": "fsm_up"
    }
  },
  "version": 1
}
```
"""


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_import_then_render_node_layout_through_files(tmp_path):
    log = tmp_path / "case.md"
    log.write_text(LOG)
    out = tmp_path / "case.yaml"
    assert run("import", str(log), "-o", str(out)).exit_code == 0
    assert "name: case" in out.read_text()
    result = run("render", "--layout", "node", str(out))
    assert result.exit_code == 0 and result.output == LOG


def test_stdin_and_stdout():
    imported = run("import", "-", input=LOG)
    assert imported.exit_code == 0
    rendered = run("render", "--layout", "node", "-", input=imported.output)
    assert rendered.output == LOG
    doc = run("render", "--from-log", "-", input=LOG)
    assert doc.exit_code == 0 and "```mermaid" in doc.output


@pytest.mark.parametrize("args, content, needle", [
    (["import"], "\n#### initiator <--- node\n```javascript\n{\n  \"a\" 1\n}\n```\n", "in.txt:5: broken JSON"),
    (["import"], "\n#### someone ---> node\n", "in.txt:2: unknown heading"),
    (["import"], "", "in.txt:1: empty file"),
    (["render"], "chanlog: 1\nevents:\n- event: frame\n", "in.txt:3: events[0]: missing key 'role'"),
    (["render"], "chanlog: [\n", "in.txt:2: YAML syntax"),
])
def test_bad_input_is_one_line_with_file_and_line_and_exit_1(tmp_path, monkeypatch, args, content, needle):
    path = tmp_path / "in.txt"
    path.write_text(content)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [*args, "in.txt"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chanlog: error: ") and needle in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [["render", "--layout", "pdf", "x.yaml"], ["import"], ["frobnicate"],
                                  ["render", "--template-dir", "/nonexistent", "x.yaml"]])
def test_bad_usage_exits_2(args):
    assert CliRunner().invoke(main, args).exit_code == 2


def test_help_on_every_command():
    result = run("--help")
    assert result.exit_code == 0 and "Exit status" in result.output
    commands = sorted(main.commands)
    assert {"import", "render"} <= set(commands)
    for name in commands:
        sub = run(name, "--help")
        assert sub.exit_code == 0, name
        assert "Exit status" in sub.output or "exit" in sub.output.lower(), name


def test_installed_console_script_renders_from_another_directory(tmp_path):
    """The wheel ships its templates: the console script works outside the source tree."""
    exe = shutil.which("chanlog", path=str(Path(sys.executable).parent)) or shutil.which("chanlog")
    if exe is None:
        pytest.skip("the chanlog console script is not installed")
    if not EXAMPLE.exists():
        pytest.skip("transcripts/init_per_group.yaml is missing")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([exe, "render", str(EXAMPLE), "-o", "doc.md"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "doc.md").read_text().startswith("# init_per_group\n")
    module = subprocess.run([sys.executable, "-m", "chanlog", "--version"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert module.returncode == 0 and "chanlog" in module.stdout
    assert REPO.exists()
