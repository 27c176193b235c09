"""``open_store()``: a Corestore for tests whose exit cannot hide a failure of the block.

With a connection open, ``Corestore.__aexit__`` loses the exception its block raised: its close is
cancelled by the store's own cancel scope, and that Cancelled replaces the exception, which the
store's nursery then swallows. A failing test passed that way; this re-raises it after the exit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hypernode.corestore import Corestore


@asynccontextmanager
async def open_store(*args: Any, **kwargs: Any) -> AsyncIterator[Corestore]:
    failure: BaseException | None = None
    async with Corestore(*args, **kwargs) as store:
        try:
            yield store
        except BaseException as e:
            failure = e
            raise
    if failure is not None:
        raise failure
