"""``chanlog decode``: an API-encoded RLP blob (``tx_…``, ``ss_…``, ``pi_…``, ...) -> its fields."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chanlog.cli import EXIT_CODES, main, write_output
from chanlog.errors import terminal_safe


@main.command("decode", epilog=EXIT_CODES)
@click.argument("blob", required=False, default="-")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object {"type", "tag", "version", "fields": {...}}; nested objects in the same '
                   'shape; "error" (and "raw") on any object that could not be decoded by schema.')
@click.option("--contract", "contract", metavar="CB_CODE",
              help="Contract code (cb_..., or a file holding it) that names the function a cb_ call data "
                   "selects and types AEVM values.")
@click.option("--function", "function", metavar="NAME",
              help="Read a cb_ as the return value of this function of --contract (name or 0x hash).")
@click.option("--return-type", type=click.Choice(["ok", "revert", "error"]),
              help="Read a cb_ as a return value of this kind (revert: a string; error: plain text); FATE or "
                   "AEVM as its bytes show unless --contract says.")
@click.option("--type", "type_", metavar="SOPHIA_TYPE",
              help="Read a cb_ as a value of this Sophia type: int, bool, string, address, bits, bytes(n), "
                   "hash, signature, list(T), option(T), map(K, V), tuples (T1, T2). AEVM values need it "
                   "(they carry no types); a FATE value is checked against it.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="File to write (default: standard output).")
def decode_command(blob: str, as_json: bool, contract: str | None, function: str | None,
                   return_type: str | None, type_: str | None, output: Path | None) -> None:
    """Decode BLOB by the node's RLP schemas and print its fields.

    BLOB is any API-encoded string that carries a serialized object: tx_ (signed or plain
    transactions, base64check or 2018 base58check, tx$ accepted), ss_ (state trees), pi_ (proof of
    inclusion), cs_ (calls tree), cb_ (contract code), ba_. Surrounding whitespace and quotes are
    ignored. Omitted or '-' reads it from standard input.

    By default an indented tree for people (amounts in aettos); --json for machines. Nested objects
    (a signed_tx's transaction, payload, poi, update, offchain_trees, ...) are decoded in place.
    Whatever decodes is printed; if anything does not (a truncated or corrupted blob, an unknown
    tag or version, a field count no layout has, a bad field), the command also prints the error as
    a path (signed_tx v1 -> transaction -> channel_create_tx v2 -> responder: unknown id tag 9) and
    exits 1. Field lists: the node's serialization templates (aeternity/protocol serializations.md,
    corrected where the node differs, e.g. off-chain update 574); see chanlog/codec/schema.py.

    Contract values: a cb_ on its own gets the first reading that fits: contract code (its function
    table and signatures, FATE or AEVM; AEVM code of 2018 has none, and says why); call data, shown as
    function(arg, ...) (named with --contract, else by its hash, or by the name 2018 AEVM call data
    carries); a FATE value ("FATE value, not call data": a return value, say); an AEVM value (its
    32-byte words, what the heap layout shows, and a hint to pass --type). Exit 0 whenever one fits.
    With --type SOPHIA_TYPE a cb_ is read as a value of that type; with --function NAME or
    --return-type as a return value. Contract values inside a tx_ are listed after its fields
    ("contract_values" in --json). Formats: aebytecode aeb_fate_encoding, aeb_fate_code, aeb_heap
    (Sophia ABI); see chanlog/codec/.
    """
    from chanlog.codec.transactions import DecodeError, annotate, errors, format_tree, to_json

    text = _read_blob(blob)
    # -- contract values (issue 13, chanlog.codec) --
    from chanlog.codec import show

    if text[:3] in ("cb_", "cb$") or contract or function or return_type or type_:
        if type_ is not None and function is not None:
            raise click.UsageError("--type and --function both give the value's type: pass one of them")
        write_output(output, show.describe_cb(text, contract, function, return_type, as_json, type_))
        return
    # -- end contract values --
    root = annotate(text)
    if root.type is None and root.data is None:  # the envelope itself is broken: nothing to show
        raise DecodeError(root.error or "cannot decode")
    values = show.tree_values(root)  # contract values inside (issue 13)
    if as_json:
        tree = to_json(root)
        if values:
            tree["contract_values"] = values
        write_output(output, json.dumps(tree, indent=2, ensure_ascii=False) + "\n")
    else:
        write_output(output, terminal_safe(format_tree(root) + show.tree_values_text(values), keep_newlines=True))
    problems = errors(root)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DecodeError(problems[0] + more)


def _read_blob(arg: str) -> str:
    """The blob from the argument, or from standard input for ``-``; whitespace and quotes stripped."""
    if arg == "-":
        from chanlog.codec.transactions import DecodeError
        from chanlog.transcript import read_stdin

        text = read_stdin(DecodeError)
    else:
        text = arg
    text = text.strip().strip("\"'").strip()
    if not text:
        raise click.UsageError("no blob given (pass it as an argument or on standard input)")
    return text
