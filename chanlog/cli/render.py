"""``chanlog render``: transcript -> Markdown."""

from __future__ import annotations

from pathlib import Path

import click

from chanlog.cli import EXIT_CODES, main, write_output


@main.command("render", epilog=EXIT_CODES)
@click.argument("transcript", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="Markdown file to write (default: standard output).")
@click.option("--layout", type=click.Choice(["doc", "node"]), default="doc", show_default=True,
              help="'doc': title, parameters, Mermaid flow, described and decoded frames. "
                   "'node': the node's own log layout, byte for byte.")
@click.option("--template-dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Directory searched before the packaged templates (doc.md.j2, node.md.j2, "
                   "descriptions.yaml); packaged ones stay reachable as 'default:NAME'.")
@click.option("--descriptions", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="YAML file overriding the one-line descriptions (sections events, methods, phases).")
@click.option("--from-log", is_flag=True,
              help="TRANSCRIPT is a node Markdown log: import it on the fly.")
def render_command(transcript: Path, output: Path | None, layout: str, template_dir: Path | None,
                   descriptions: Path | None, from_log: bool) -> None:
    """Render a transcript (YAML, '-' for standard input) as a Markdown flow document.

    The 'node' layout reproduces the node's channel logs (init_per_group: "initiator opens a
    WebSocket connection", "initiator <--- node", JSON blocks, info sentences); the 'doc' layout adds a
    parameter table, a Mermaid sequenceDiagram with phases, a description of every frame and the
    decoded fields of every tx_ blob (serializations.md).
    """
    from chanlog.render import render
    from chanlog.transcript import load

    if from_log:
        from chanlog.importer import import_file

        loaded = import_file(transcript)
    else:
        loaded = load(transcript)
    write_output(output, render(loaded, layout=layout, template_dir=template_dir, descriptions=descriptions))
