"""Training batches on the devices one step ahead, resumable exactly.

:class:`DeviceFeed` wraps a grain iterator: after a step is dispatched (asynchronously), the next host
batch is drawn and its host-to-device copy started, so the copy overlaps the running step. Its
``get_state``/``set_state`` are those of the grain iterator *before* the batch it holds, so a checkpoint
taken while a batch is held resumes at that batch: the first one not trained on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

__all__ = ["DeviceFeed"]


class DeviceFeed:
    """``take()`` the held device batch (drawing one if none is held), ``fill()`` draw and copy the next.
    Checkpointed by ``grain.checkpoint.CheckpointSave/Restore`` like the iterator it wraps."""

    def __init__(self, iterator: Iterator, to_device: Callable):
        self.iterator, self.to_device = iterator, to_device
        self._held: tuple[object, object] | None = None  # (iterator state before the batch, device batch)

    def take(self):
        held = self._held if self._held is not None else self._draw()
        self._held = None
        return held[1]

    def fill(self) -> None:
        if self._held is None:
            self._held = self._draw()

    def _draw(self):
        state = self._iterator_state()
        return state, self.to_device(next(self.iterator))

    def _iterator_state(self):
        get_state = getattr(self.iterator, "get_state", None)  # a plain iterator (benchmarks) has none
        return None if get_state is None else get_state()

    # The protocol grain's checkpoint handler uses for iterators that are not its own: bytes of JSON.
    def get_state(self) -> bytes:
        state = self._held[0] if self._held is not None else self._iterator_state()
        return json.dumps(state, indent=4).encode()

    def set_state(self, state: bytes) -> None:
        self._held = None
        self.iterator.set_state(json.loads(state))

    def start_prefetch(self) -> None:
        if hasattr(self.iterator, "start_prefetch"):
            self.iterator.start_prefetch()
