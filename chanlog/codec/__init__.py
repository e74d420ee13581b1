"""The codecs of the chain's values: API encoding, RLP schemas, serialized objects, contract values and code.

- :mod:`chanlog.codec.encoding` — the API encoding of every ``xx_`` prefix (base58check or base64check;
  api_encoding.md), one prefix table.
- :mod:`chanlog.codec.schema` — the RLP field lists of every serialized object, keyed by ``(tag, version)``
  as the node writes them (serializations.md, corrected where the node differs).
- :mod:`chanlog.codec.transactions` — ``tx_``, ``pi_``, ``ss_``, ... decoded into named fields by schema,
  and encoded back byte for byte.
- :mod:`chanlog.codec.fate` — FATE values (``aeb_fate_encoding``): one reader and one writer per tag, types.
- :mod:`chanlog.codec.aevm` — AEVM values in the Sophia ABI's heap layout (``aeb_heap``), typed by typereps.
- :mod:`chanlog.codec.contract` — a serialized contract (``compiler_sophia``, tag 70): fields, FATE function
  table with names from the symbol table, type signatures; the AEVM ``type_info``.
- :mod:`chanlog.codec.calls` — call data and return values named by the contract that defines them, and the
  contracts found in a transcript.
- :mod:`chanlog.codec.show` — one ``cb_`` value on its own, as ``chanlog decode`` shows it.

The public decoding functions are re-exported here (``from chanlog.codec import decode, format_tree``);
they were ``chanlog.decode``'s before the layout of issue 25. Every contract-value error is a
:class:`~chanlog.codec.errors.CodecError` naming the byte offset (and a path into the value); every
object error a :class:`DecodeError` naming the blob, tag, version and field.
"""

from chanlog.codec.encoding import ApiValue, EncodingError, encode_api, parse_api
from chanlog.codec.transactions import (
    Decoded,
    DecodeError,
    EncodeError,
    annotate,
    annotate_bytes,
    build,
    decode,
    decode_bytes,
    decoded_markdown,
    encode,
    encode_bytes,
    errors,
    format_tree,
    is_decodable_blob,
    strip_signatures,
    to_json,
)

__all__ = ["ApiValue", "DecodeError", "Decoded", "EncodeError", "EncodingError", "annotate", "annotate_bytes",
           "build", "decode", "decode_bytes", "decoded_markdown", "encode", "encode_api", "encode_bytes", "errors",
           "format_tree", "is_decodable_blob", "parse_api", "strip_signatures", "to_json"]
