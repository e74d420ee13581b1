"""The ``chanlog`` command line: one thin click command per verb.

Domain errors (:class:`chanlog.errors.ChanlogError`) become one-line messages here, exit status 1;
bad usage exits 2 (click's convention).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chanlog import __version__
from chanlog.errors import ChanlogError

EXIT_CODES = """\b
Exit status: 0 success; 1 bad input or a failed check (the message names file:line,
frame number or decode path); 2 bad usage."""


class DomainErrors(click.Group):
    """A click group that turns :class:`ChanlogError` into ``chanlog: error: <where>: <what>``, exit 1."""

    def invoke(self, ctx: click.Context):  # noqa: D401
        try:
            return super().invoke(ctx)
        except ChanlogError as exc:
            click.echo(f"chanlog: error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=DomainErrors, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="chanlog")
def main() -> None:
    """Record, decode, render and replay Aeternity state-channel WebSocket sessions.

    Recording is done by mitmproxy with the recorder script shipped here (needs the record extra,
    pip install 'chanlog[record]'; see chanlog addon-path):

    \b
        mitmdump -q --listen-host 127.0.0.1 -s "$(chanlog addon-path)" --mode reverse:http://NODE:3014

    The commands below work on the transcripts it writes (YAML, format 1) and on the node's Markdown
    channel logs.
    """


def _out(path: Path | None, text: str) -> None:
    """Write ``text`` to ``path``; ``None`` or ``-`` means standard output."""
    if path is None or str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        from chanlog.transcript import write_atomic

        write_atomic(path, text)





def write_output(path: Path | None, text: str) -> None:
    """Write a command's text result to ``path``; ``None`` or ``-`` means standard output."""
    _out(path, text)


# Each verb lives in its own module below ``chanlog.cli`` and registers itself on ``main``.
COMMAND_MODULES = ("importer", "render", "decode", "capture", "diff", "replay", "play", "demo",
                   "export", "addon")


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"chanlog.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"chanlog.cli.{name}":
                raise


_register()
