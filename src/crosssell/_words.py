"""Text columns joined from a table of words by a compiled loop, in memory numpy allocates.

A batch of offers writes millions of short texts: each offer's reason (a few dozen fixed
words and ids), its client and product ids, its offer type and its evidence's product ids.
They are all joins of words from a small table (one row per word), so one loop serves them:
:func:`crosssell._kernels.join_words` copies the words 8 bytes at a time into one buffer, and
Arrow wraps that buffer without a copy. Taking the same texts with Arrow's ``take`` is about
as fast, but its memory comes from Arrow's allocator, which hands freed memory back to the
system at once: every batch then pays for fresh pages again (a third of the explained 1M-client
batch's kernel time).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]

from crosssell._kernels import join_words

__all__ = ["WordTable"]


@dataclass(frozen=True, slots=True, eq=False)
class WordTable:
    """Words (UTF-8) kept for joining: each from its own 8-byte word on, zero-padded.

    Attributes
    ----------
    words : ndarray of uint64
        The words' bytes, read as little-endian numbers, each word starting a new one.
    starts : ndarray of int64, shape (n_words + 1,)
        Where each word starts in ``words`` (and where the last one ends).
    offsets : ndarray of int64, shape (n_words + 1,)
        Cumulative byte lengths: word ``x`` has ``offsets[x + 1] - offsets[x]`` bytes.

    Examples
    --------
    >>> import numpy as np
    >>> table = WordTable.of(["Hello", ", ", "world"])
    >>> table.join(np.array([[0, 1, 2], [2, -1, -1]])).to_pylist()
    ['Hello, world', 'world']
    >>> table.take(np.array([2, 0])).to_pylist()
    ['world', 'Hello']
    """

    words: npt.NDArray[np.uint64]
    starts: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]

    @classmethod
    def of(cls, texts: Sequence[str] | pa.Array | pa.ChunkedArray) -> WordTable:
        """Encode ``texts`` (in order: word ``x`` is ``texts[x]``) as UTF-8.

        Parameters
        ----------
        texts : sequence of str, or pyarrow string array
            The words; an Arrow array is read from its buffers (a million ids in about
            50 ms), and must hold no nulls.
        """
        arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(list(texts))
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            raise TypeError(f"'texts' must be strings; got Arrow type {arr.type}.")
        if arr.null_count:
            raise ValueError(f"'texts' must hold no nulls; got {arr.null_count}.")
        arr = arr.cast(pa.large_string())
        n = len(arr)
        _, off_buf, data_buf = arr.buffers()
        offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0)
        lengths = np.diff(offsets)
        starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum((lengths + 7) // 8, out=starts[1:])
        # every byte to its word's 8-byte words, the rest zero
        padded = np.zeros(8 * int(starts[-1]), dtype=np.uint8)
        owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
        at = np.arange(offsets[0], offsets[-1], dtype=np.int64)
        padded[8 * starts[owner] + (at - offsets[owner])] = data[at]
        return cls(
            words=padded.view("<u8").astype(np.uint64),
            starts=starts,
            offsets=offsets - offsets[0],
        )

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def join(self, words: npt.NDArray[np.int64], *, large: bool = False) -> pa.Array:
        """Join each row's word numbers (up to the first negative one) into one text.

        Parameters
        ----------
        words : ndarray of int, shape (m, w)
            Word numbers in ``0 .. len(self) - 1``, or negative: a row's text ends at its
            first negative entry.
        large : bool, default False
            Return Arrow's ``large_string`` (64-bit offsets, what pandas' text columns hold)
            rather than ``string`` (which this returns only while the texts fit in it).

        Returns
        -------
        pyarrow.StringArray or pyarrow.LargeStringArray
            ``m`` texts, over buffers numpy allocated.
        """
        rows = np.ascontiguousarray(words, dtype=np.int64)
        if rows.ndim != 2:
            raise ValueError(f"'words' must be a 2-D array of word numbers; got {rows.ndim} axes.")
        if rows.size and rows.max(initial=-1) >= len(self):
            raise ValueError(f"'words' must be word numbers below {len(self)}.")
        m = rows.shape[0]
        offsets = np.zeros(m + 1, dtype=np.int64)
        packed = join_words(rows, self.words, self.starts, self.offsets, offsets)
        if sys.byteorder != "little":
            packed = packed.byteswap()
        data = pa.py_buffer(packed.view(np.uint8)[: offsets[-1]])
        if not large and offsets[-1] < 2**31:
            return pa.StringArray.from_buffers(m, pa.py_buffer(offsets.astype(np.int32)), data)
        return pa.LargeStringArray.from_buffers(m, pa.py_buffer(offsets), data)

    def take(self, index: npt.NDArray[np.int64], *, large: bool = False) -> pa.Array:
        """Return the words at ``index`` (word numbers) as texts, as :meth:`join` does."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and index.min() < 0:
            raise ValueError("'index' must be word numbers (0 or more).")
        return self.join(index.reshape(-1, 1), large=large)
