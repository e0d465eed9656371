"""Progress bars on long work: shown when asked, or by default when stderr is a terminal."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar", "show_progress"]


def show_progress(progress: bool | None) -> bool:
    """Return whether to show a bar: ``progress`` when given, else whether stderr is a terminal.

    Examples
    --------
    >>> show_progress(True), show_progress(False)
    (True, False)
    """
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """Make a tqdm bar: the notebook widget with ipywidgets installed, the text bar otherwise.

    tqdm's automatic choice picks the widget in Jupyter even without ipywidgets and then warns
    "IProgress not found" on every bar; the text bar works everywhere.

    Examples
    --------
    >>> with progress_bar(total=3, disable=True) as bar:
    ...     bar.update(3)
    """
    import importlib.util

    if importlib.util.find_spec("ipywidgets") is None:
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)
