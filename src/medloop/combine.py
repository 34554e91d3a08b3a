"""Concurrent callers' work done in batches by the callers themselves: the one copy.

Used for group commits (:mod:`medloop.storage.group_commit`: one transaction, one
fsync for many requests' rows) and for batched inference (:mod:`medloop.ml.batcher`:
one forward pass for the analyses that wait together). The first caller becomes the
leader and runs a batch of everything waiting; callers that arrive meanwhile wait,
and when the batch is done the oldest of them leads the next one. No thread is
added and nothing waits for a batch to fill: a lone caller runs its own item at once,
in its own thread, with no hand-off::

    combiner = Combiner(run_batch, max_batch=8)
    result = combiner.submit(item)        # from any number of threads

``run_batch(items)`` returns one outcome per item, in order: a result, or the
exception that item's caller gets. An exception raised by ``run_batch`` itself goes
to every caller of the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Combiner", "Failed"]

In = TypeVar("In")
Out = TypeVar("Out")


class Failed:
    """An item's outcome when it failed: its caller gets ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Waiter(Generic[In]):
    __slots__ = ("done", "item", "lead", "outcome", "wake")

    def __init__(self, item: In) -> None:
        self.item = item
        self.wake = threading.Event()
        self.lead = False
        self.done = False
        self.outcome: object = None

    def finish(self, outcome: object) -> None:
        self.outcome, self.done = outcome, True
        self.wake.set()


class Combiner(Generic[In, Out]):
    """Runs concurrent callers' items in batches (see the module doc).

    Args:
        run_batch: processes a batch; returns one outcome per item (``Failed`` for
            an item that failed).
        max_batch: at most this many items per batch.
    """

    def __init__(
        self, run_batch: Callable[[list[In]], Sequence[Out | Failed]], max_batch: int = 8
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Waiter[In]] = []
        self._leading = False
        self.batches = 0
        self.items = 0

    def submit(self, item: In) -> Out:
        """Process ``item`` in a batch; returns its result or raises its error."""
        me: _Waiter[In] = _Waiter(item)
        with self._lock:
            self._pending.append(me)
            if not self._leading:
                self._leading = me.lead = True
        while not me.done:
            if not me.lead:
                me.wake.wait()
                me.wake.clear()
            if me.lead and not me.done:
                self._lead()
        if isinstance(me.outcome, Failed):
            raise me.outcome.error
        return me.outcome  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._lock:
            batch = self._pending[: self.max_batch]
            del self._pending[: len(batch)]
        try:
            outcomes: Sequence[object] = self._run_batch([w.item for w in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(outcomes)} outcomes")
        except BaseException as err:
            outcomes = [Failed(err)] * len(batch)
        finally:
            with self._lock:
                self.batches += 1
                self.items += len(batch)
                if self._pending:
                    following = self._pending[0]
                    following.lead = True
                    following.wake.set()
                else:
                    self._leading = False
        for waiter, outcome in zip(batch, outcomes, strict=True):
            waiter.finish(outcome)
