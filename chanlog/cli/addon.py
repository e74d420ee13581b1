"""``chanlog addon-path``: where the mitmproxy recorder script of this installation is."""

from __future__ import annotations

import click

from chanlog.cli import EXIT_CODES, main


@main.command("addon-path", epilog=EXIT_CODES)
def addon_path_command() -> None:
    """Print the path of the recorder script shipped with chanlog, for mitmdump -s.

    Works the same from a clone and from an installed wheel:

    \b
        mitmdump -q --listen-host 127.0.0.1 --listen-port 8080 -s "$(chanlog addon-path)" \\
            --mode reverse:http://NODE:3014 --set chanlog_dir=./recordings

    Recording needs mitmproxy, the "record" extra (pip install 'chanlog[record]'); without it the path is
    still printed and a warning goes to standard error.
    """
    from chanlog.cli.pipeline import RECORD_EXTRA, addon_path, mitmproxy_installed

    click.echo(str(addon_path()))
    if not mitmproxy_installed():
        click.echo(f"chanlog: warning: mitmproxy is not installed; recording needs it: {RECORD_EXTRA}", err=True)
