"""Progress on standard error for long work over one large input (issue 17, "Inputs of any size").

A thin use of tqdm: a bar counting the input's bytes, shown only when standard error is a terminal
(quiet in pipes, CI logs and tests), cleared when done.
"""

from __future__ import annotations

import sys
from typing import Any


def byte_bar(total: int | None, desc: str) -> Any:
    """A tqdm bar over ``total`` bytes (``None`` when unknown) labelled ``desc``; ``update(n)`` adds ``n``
    bytes, ``close()`` ends it. Disabled unless standard error is a terminal."""
    from tqdm import tqdm

    stderr = sys.stderr
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=stderr,
                disable=not (hasattr(stderr, "isatty") and stderr.isatty()), leave=False, dynamic_ncols=True,
                mininterval=0.5)
