"""Ctrl-C on the command line, made to stick.

A KeyboardInterrupt raised while numba writes a compiled kernel to its cache lands in a
ctypes callback, which swallows it. The command line's handler therefore also sets
`INTERRUPTED`, and a run checks it every week: an interrupt lost that way ends the run
a week later instead of never.
"""

import threading

INTERRUPTED = threading.Event()


def remember_interrupt(signum, frame) -> None:
    """The command line's SIGINT handler."""
    INTERRUPTED.set()
    raise KeyboardInterrupt
