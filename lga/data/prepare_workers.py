"""Worker processes with a time limit per task (:func:`run_parallel`): a task that hangs or crashes
its process is reported and its worker replaced; workers end with the process that started them.
Part of :mod:`lga.data.prepare`, which offers every name.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from typing import Callable, Iterator, Sequence

from ..util.processes import die_with_parent
from .video import VideoError


DEFAULT_TIMEOUT = 300.0


def _worker_main(conn, fn, parent: int):
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends us
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        i, args, kwargs = msg
        try:
            result = (i, True, fn(*args, **kwargs))
        except VideoError as e:
            result = (i, False, e.reason)
        except OSError as e:  # writing failed: the parent stops the run
            result = (i, None, (e.errno, e.strerror or str(e), e.filename))
        except Exception as e:
            result = (i, False, f"{type(e).__name__}: {e}")
        try:
            conn.send(result)
        except Exception as e:
            conn.send((i, False, f"result could not be sent back ({type(e).__name__}: {e})"))


class _Worker:
    def __init__(self, ctx, fn):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, fn, os.getpid()), daemon=True)
        self.proc.start()
        child.close()
        self.task: int | None = None
        self.started = 0.0

    def stop(self, kill: bool = False):
        if kill:
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def run_parallel(fn: Callable, tasks: Sequence[tuple[tuple, dict]], workers: int = 2,
                 timeout: float | None = DEFAULT_TIMEOUT) -> Iterator[tuple[int, bool, object]]:
    """Run ``fn(*args, **kwargs)`` for every ``(args, kwargs)`` of ``tasks`` in worker processes.

    Yields ``(task_index, ok, result_or_reason)`` as tasks finish. A task that raises gives
    ``ok=False`` and the error; one that runs past ``timeout`` seconds, or kills its process (a
    decoder crash), gives ``ok=False`` with that reason, and its worker is replaced. A task that
    raises ``OSError`` (a full disk: the fault of no single task) stops every worker, and the error
    is raised here. Workers end with this process, even if it is killed (they are started from the
    calling thread, which must live as long as the iteration).
    ``workers=0`` runs the tasks here, one by one, without a time limit (for debugging).
    """
    if workers <= 0:
        for i, (args, kwargs) in enumerate(tasks):
            try:
                yield i, True, fn(*args, **kwargs)
            except VideoError as e:
                yield i, False, e.reason
            except OSError:
                raise
            except Exception as e:
                yield i, False, f"{type(e).__name__}: {e}"
        return
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("fork" if "fork" in methods else "spawn")
    pending = deque(range(len(tasks)))
    pool = [_Worker(ctx, fn) for _ in range(min(workers, len(tasks)))]
    try:
        while pending or any(w.task is not None for w in pool):
            for w in pool:
                if w.task is None and pending:
                    i = pending.popleft()
                    args, kwargs = tasks[i]
                    w.conn.send((i, args, kwargs))
                    w.task, w.started = i, time.monotonic()
            busy = [w for w in pool if w.task is not None]
            multiprocessing.connection.wait([w.conn for w in busy] + [w.proc.sentinel for w in busy],
                                            timeout=0.5)
            for k, w in enumerate(pool):
                if w.task is None:
                    continue
                reason = None
                if w.conn.poll():
                    try:
                        i, ok, res = w.conn.recv()
                    except (EOFError, OSError):
                        reason = f"the worker process died (exit code {w.proc.exitcode})"
                    else:
                        w.task = None
                        if ok is None:  # the task could not write: stop everything
                            raise OSError(*res) if res[0] is not None else OSError(res[1])
                        yield i, ok, res
                        continue
                if reason is None and not w.proc.is_alive():
                    reason = f"the worker process died (exit code {w.proc.exitcode}); the decoder may have crashed"
                if reason is None and timeout is not None and time.monotonic() - w.started > timeout:
                    reason = f"timed out after {timeout:g} s"
                if reason is not None:
                    i = w.task
                    w.stop(kill=True)
                    pool[k] = _Worker(ctx, fn)
                    yield i, False, reason
    finally:
        for w in pool:
            w.stop(kill=w.task is not None)
