"""Contract values and code: FATE and AEVM (Sophia ABI) call data, return values and serialized contracts.

- :mod:`chanlog.codec.fate` — FATE values (``aeb_fate_encoding``): one reader and one writer per tag, types.
- :mod:`chanlog.codec.aevm` — AEVM values in the Sophia ABI's heap layout (``aeb_heap``), typed by typereps.
- :mod:`chanlog.codec.contract` — a serialized contract (``compiler_sophia``, tag 70): fields, FATE function
  table with names from the symbol table, type signatures; the AEVM ``type_info``.
- :mod:`chanlog.codec.calls` — call data and return values named by the contract that defines them, and the
  contracts found in a transcript.

Every error is a :class:`CodecError` naming the byte offset (and a path into the value).
The tx_ layer (:mod:`chanlog.encoding`, :mod:`chanlog.decode`) is used for API strings and RLP objects.
"""
