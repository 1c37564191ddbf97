"""From tokens to text deltas, between `model.generate` (a producer thread) and a consumer.

`TokenStream` has the two methods transformers' streamer interface calls (`put(tokens)`,
`end()`), like `TextIteratorStreamer`, with what serving needs on top:

- counts the tokens generated (the first `put` is the prompt, skipped);
- decodes incrementally with a sliding window (the offsets method of vLLM's detokenizer):
  O(1) per token, and a piece that ends in half a UTF-8 character (U+FFFD) waits for the
  next token;
- applies stop strings: text is cut before the first stop string, which sets `halt`; a
  tail that could be the start of a stop string is held back until it is not;
- hands `(text, tokens so far)` pieces to the consumer through a *bounded* queue, so the
  producer never runs more than a few tokens ahead of the client (and a cancelled request
  stops within a few tokens). Once `halt` is set, nothing more is queued or counted.

`HaltCriteria` is the stopping criterion: generation stops at the next token once the
request is cancelled or `halt` is set. Neither class imports anything heavy.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass
from typing import Any

QUEUE_SIZE = 4
DONE = None  # queued once the producer has finished


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    tokens: int  # generated so far, cumulative


class TokenStream:
    def __init__(
        self,
        tokenizer: Any,
        stops: tuple[str, ...],
        halt: threading.Event,
        eos_ids: frozenset[int] = frozenset(),
    ) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stops if s)
        self.halt = halt
        self.eos_ids = eos_ids
        self.queue: queue.Queue[Piece | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self.tokens = 0
        self.stopped = False  # a stop string ended the text
        self.ended_on_eos = False
        self.error: BaseException | None = None
        self._prompt_seen = False
        self._ids: list[int] = []
        self._prefix = 0  # window start (decoding context)
        self._read = 0  # ids before this were turned into text
        self._text = ""  # text of every generated token so far
        self._sent = 0  # characters of _text handed to the consumer

    # --------------------------------------------------------- producer (generate)

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        if self.halt.is_set():
            return
        ids = [int(i) for i in value.reshape(-1).tolist()]
        self.tokens += len(ids)
        self._ids.extend(ids)
        self.ended_on_eos = bool(ids) and ids[-1] in self.eos_ids
        self._text += self._decode_new()
        self._emit(final=False)

    def end(self) -> None:
        if not self.halt.is_set():
            self._emit(final=True)

    def finish(self, error: BaseException | None = None) -> None:
        """Called by the producer thread last, whatever happened."""
        self.error = error
        self._offer(DONE)

    def _decode_new(self) -> str:
        decode = self.tokenizer.decode
        before = decode(self._ids[self._prefix : self._read], skip_special_tokens=True)
        after = decode(self._ids[self._prefix :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return str(after[len(before) :])
        return ""

    def _emit(self, *, final: bool) -> None:
        pending = self._text[self._sent :]
        # Text that might begin a stop string was held back, so one cannot start earlier.
        found = [at for stop in self.stops if (at := pending.find(stop)) != -1]
        if found:
            pending = pending[: min(found)]
            self.stopped = True
        elif not final:
            pending = pending[: len(pending) - held_back(pending, self.stops)]
        if pending:
            self._sent += len(pending)
            self._offer(Piece(pending, self.tokens))
        if self.stopped:
            self.halt.set()

    def _offer(self, item: Piece | None) -> None:
        """Queue an item, waiting while the consumer catches up; give up once halted."""
        while True:
            try:
                self.queue.put(item, timeout=0.05)
                return
            except queue.Full:
                if self.halt.is_set():
                    return

    # --------------------------------------------------------- consumer

    def next(self) -> Piece | None:
        return self.queue.get()

    def drain(self, thread: threading.Thread) -> None:
        """Halt the producer and empty the queue until its thread has ended."""
        self.halt.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.05)
        thread.join()


def held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters of `text` might begin a stop string."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if stop.startswith(text[-n:]):
                longest = n
                break
    return longest


class HaltCriteria:
    """A transformers stopping criterion: stop once cancelled or halted."""

    def __init__(self, cancelled: threading.Event, halt: threading.Event) -> None:
        self.cancelled = cancelled
        self.halt = halt

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = self.cancelled.is_set() or self.halt.is_set()
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)
