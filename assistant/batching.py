"""Many tasks' blocking calls of one kind, made in the same moment, answered by ONE call on a thread.

The outbox worker claims card jobs in batches and starts their handlers
together; each handler reads its request (a read transaction) and, after a
post, saves the card's reference (a write transaction). A transaction costs
more than the statements in it (SQLite: the write lock, BEGIN IMMEDIATE, the
commit; SQLAlchemy: the session), so the calls that arrive while one is
being served are queued and served together by the next one: under load a
card costs a fraction of a transaction, and alone it costs what it did.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

K = TypeVar("K")
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """``await coalescer(item)``: the item's answer from ``run_many(items)``, run on ``executor`` for every
    item queued meanwhile.

    ``run_many`` gets the queued items in arrival order and returns one answer
    per item, in the same order; an answer that is an exception is raised to
    that item's caller alone. If ``run_many`` itself raises, every caller of
    that batch gets the exception. One batch runs at a time per coalescer (on
    SQLite there is one writer anyway); ``max_batch`` bounds a batch.
    """

    def __init__(self, run_many: Callable[[list[K]], Sequence[V | BaseException]], executor: Executor | None = None, *, max_batch: int = 64) -> None:
        self._run_many = run_many
        self._executor = executor
        self._max_batch = max_batch
        self._queue: list[tuple[K, asyncio.Future[V]]] = []
        self._flushing = False

    async def __call__(self, item: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self._queue.append((item, future))
        if not self._flushing:
            self._flushing = True
            loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                items = [item for item, _ in batch]
                try:
                    answers = await loop.run_in_executor(self._executor, contextvars.copy_context().run, self._run_many, items)
                    if len(answers) != len(batch):
                        raise RuntimeError(f"run_many answered {len(answers)} of {len(batch)} items")
                except BaseException as exc:  # noqa: BLE001 - every caller of the batch learns it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        self._fail_queued(exc)
                        raise
                    continue
                for (_, future), answer in zip(batch, answers):
                    if future.done():  # its caller was cancelled
                        continue
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._flushing = False

    def _fail_queued(self, exc: BaseException) -> None:
        """The flush itself was cancelled (the loop is shutting down): nobody may wait for an answer forever."""
        queued, self._queue = self._queue, []
        for _, future in queued:
            if not future.done():
                future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("the batch was cancelled"))
