"""The ``chanlog`` command line: one thin click command per verb, each in a module named for it
(``cli/render.py``, ``cli/replay.py``, ...); :mod:`chanlog.cli.pipeline` runs every stage for ``chanlog demo``.
This package is the only one that imports click.

Domain errors (:class:`chanlog.errors.ChanlogError`) become one-line messages here, exit status 1;
bad usage exits 2 (click's convention).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from chanlog import __version__
from chanlog.errors import ChanlogError, terminal_safe

EXIT_CODES = """\b
Exit status: 0 success; 1 bad input or a failed check (the message names file:line,
frame number or decode path); 2 bad usage."""


class DomainErrors(click.Group):
    """A click group that turns every failure into one line ``chanlog: error: <where>: <what>``, exit 1,
    never a traceback: :class:`ChanlogError` (bad input), ``OSError`` (a file that cannot be read or written,
    a full disk), text that is not UTF-8, a failing user template (jinja2), input nested past what Python
    can walk, and, last, any other exception (named as an internal error; ``CHANLOG_DEBUG=1`` shows the
    traceback). Every message is made safe for a terminal (:func:`chanlog.errors.terminal_safe`)."""

    def invoke(self, ctx: click.Context):  # noqa: D401
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit,
                KeyboardInterrupt):
            raise
        except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as other tools do
            _silence_stdout()
            ctx.exit(1)
        except Exception as exc:  # noqa: BLE001 - the one place every failure becomes one line
            if os.environ.get("CHANLOG_DEBUG"):
                raise
            fail(error_line(exc))


def fail(message: str, status: int = 1) -> None:
    """Print ``chanlog: error: <message>`` (made terminal-safe) to standard error and exit ``status``."""
    click.echo(f"chanlog: error: {terminal_safe(message)}", err=True)
    sys.exit(status)


def error_line(exc: BaseException) -> str:
    """``<where>: <what>`` for any exception a command may raise (see :class:`DomainErrors`)."""
    if isinstance(exc, ChanlogError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: {exc.reason} at byte {exc.start}"
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else "output"
        return f"{where}: {exc.strerror or exc}"
    if isinstance(exc, RecursionError):
        return "input nested too deeply to process (limits: see 'Limits on untrusted input' in the README)"
    from chanlog.render import template_frame

    template = template_frame(exc)
    try:
        import jinja2
    except ImportError:  # pragma: no cover - jinja2 is a dependency
        jinja2 = None
    if jinja2 is not None and isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.filename or exc.name or 'template'}:{exc.lineno}: template syntax: {exc.message}"
    if template is not None or (jinja2 is not None and isinstance(exc, jinja2.TemplateError)):
        where = f"{template[0]}:{template[1]}: " if template else ""
        return f"{where}template failed: {type(exc).__name__}: {exc}"
    return f"internal error: {type(exc).__name__}: {exc} (CHANLOG_DEBUG=1 shows the traceback)"


def _silence_stdout() -> None:
    """Point standard output at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


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
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:  # a full disk behind a redirection (> /dev/full)
            _silence_stdout()
            raise ChanlogError(f"cannot write: {exc.strerror or exc}", "<stdout>") from None
    else:
        from chanlog.transcript import write_atomic

        try:
            write_atomic(path, text)
        except OSError as exc:  # a folder that cannot be written, a full disk: the old file stays as it was
            raise ChanlogError(f"cannot write: {exc.strerror or exc}", str(path)) from None


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
