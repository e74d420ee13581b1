"""``chanlog demo``: record the shipped example through a real mitmdump and render the recording."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click

from chanlog.cli import main, write_output

DEMO_EXIT_CODES = """\b
Exit status: 0 the pipeline ran and the recording equals the example (volatile values ignored);
1 a piece is missing (mitmdump, the example), a stage failed (the message names it and quotes the
process), or the recording differs from the example (the differences go to standard error);
2 bad usage."""


@main.command("demo", epilog=DEMO_EXIT_CODES)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="Markdown file to write the rendered recording to (default: standard output).")
@click.option("--transcript", type=click.Path(path_type=Path, dir_okay=False),
              help="Transcript (YAML, or a node Markdown log) to serve and play (default: the shipped "
                   "transcripts/init_per_group.yaml).")
@click.option("--keep", type=click.Path(path_type=Path, file_okay=False),
              help="Directory to keep the recording (record/) and the processes' logs in "
                   "(default: a temporary directory, removed at the end).")
@click.option("--layout", type=click.Choice(["doc", "node"]), default="doc", show_default=True,
              help="How to render the recording (see chanlog render).")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds each stage may take.")
@click.option("--mitmdump", "mitmdump_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The mitmdump executable (default: beside this Python, else on PATH).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on standard error.")
def demo_command(output: Path | None, transcript: Path | None, keep: Path | None, layout: str, timeout: float,
                 mitmdump_path: Path | None, quiet: bool) -> None:
    """Run the whole pipeline on the shipped example, with real processes on loopback.

    A fake node (chanlog replay) serves transcripts/init_per_group.yaml; mitmdump -s with the shipped
    recorder script (chanlog addon-path) records in front of it (reverse mode, free ports); chanlog play plays both participants through the
    proxy; the freshly recorded transcript is compared with the example and rendered as Markdown,
    titled by the session's name.
    Every process is stopped at the end, whatever happened.
    """
    from chanlog.cli.pipeline import run_demo

    def progress(line: str) -> None:
        if not quiet:
            click.echo(f"chanlog demo: {line}", err=True)

    workdir = keep if keep is not None else Path(tempfile.mkdtemp(prefix="chanlog-demo-"))
    try:
        result = run_demo(workdir, transcript=transcript, timeout=timeout, mitmdump=mitmdump_path,
                          layout=layout, progress=progress)
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    write_output(output, result.document)
    if output is not None and str(output) != "-":
        progress(f"rendered ({layout} layout) into {output}")
    if result.differences:
        click.echo("chanlog demo: the recording differs from the example:", err=True)
        for line in result.differences:
            click.echo(line, err=True)
        sys.exit(1)
