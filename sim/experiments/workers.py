"""Worker processes that never outlive the command that started them.

Sweeps, validation and calibration run replicates on a pool of processes. If the
command is killed (SIGKILL leaves it no chance to clean up), its workers, each
holding a model of a few hundred MiB, must not keep running: on Linux each worker
asks the kernel to kill it when its parent dies (prctl PR_SET_PDEATHSIG); elsewhere
a thread in each worker polls the parent. Once the workers are gone, multiprocessing's
resource tracker sees its last client go and exits too.

Ctrl-C reaches every process in the terminal's process group: the workers ignore
it and the command, which alone decides what to keep, stops them (`stop`).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1       # from <linux/prctl.h>
PARENT_POLL_SECONDS = 1.0


def process_pool(workers: int, initializer=None) -> cf.ProcessPoolExecutor:
    """A pool of `workers` fresh (spawned) processes that die with this one; each
    then runs `initializer`, if given."""
    import multiprocessing

    return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_start_worker,
                                  initargs=(os.getpid(), initializer))


def _start_worker(parent: int, initializer) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
    if initializer is not None:
        initializer()


def die_with_parent(parent: int) -> None:
    """End this process as soon as the process `parent` ends."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_poll_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:       # the parent died before the request took effect
        os._exit(1)


def _poll_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def stop(pool: cf.ProcessPoolExecutor) -> None:
    """After Ctrl-C: drop the queued tasks and end the running ones now, rather than
    wait for them (a run can take minutes)."""
    for process in list((pool._processes or {}).values()):   # the only handle on them
        process.kill()
        process.join()
    pool.shutdown(wait=True, cancel_futures=True)
