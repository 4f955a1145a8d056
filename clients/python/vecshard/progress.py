"""Progress of a long upsert: a line on stderr, or the caller's own callback."""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional, Union

#: ``progress``: ``False`` (silent), ``True`` (a line on stderr), or a callable
#: ``f(done, total)`` called after every acknowledged batch.
ProgressLike = Union[bool, Callable[[int, int], None], None]


class Progress:
    """Counts acknowledged points and reports them."""

    def __init__(self, total: int, how: ProgressLike, what: str = "upserted") -> None:
        self.total, self.done, self.what = total, 0, what
        self.started = time.monotonic()
        self.callback: Optional[Callable[[int, int], None]] = None
        if callable(how):
            self.callback = how
        elif how:
            self.callback = self._print

    def add(self, n: int) -> None:
        """``n`` more points are durable."""
        self.done += n
        if self.callback is not None:
            self.callback(self.done, self.total)

    def _print(self, done: int, total: int) -> None:
        secs = max(time.monotonic() - self.started, 1e-9)
        end = "\n" if done >= total else ""
        sys.stderr.write(
            f"\r{self.what} {done}/{total} points ({100 * done // max(total, 1)}%, {done / secs:,.0f}/s){end}"
        )
        sys.stderr.flush()
