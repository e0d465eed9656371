"""Figures and axes for the evaluation charts, with matplotlib imported only when one is drawn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["figure_axes", "pyplot"]


def pyplot() -> Any:
    """Import ``matplotlib.pyplot``, saying which extra to install when it is missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Charts need matplotlib: pip install 'crosssell[plot]' (or pip install matplotlib)."
        ) from exc
    return plt


def figure_axes(
    ax: Axes | None, n: int = 1, *, figsize: tuple[float, float] | None = None
) -> tuple[Figure, list[Axes]]:
    """Return the figure of ``ax`` and ``[ax]``, or a new figure with ``n`` panels in a row.

    A new figure is made through pyplot (so that Jupyter's inline display is set up) and then
    closed at once: pyplot forgets it, so Jupyter shows it once, as the value the chart function
    returns, rather than once more when the cell ends; in a script, save it with ``savefig``.
    The figure of an ``ax`` the caller passed is the caller's and is left alone.
    """
    if ax is not None:
        if n != 1:
            raise ValueError(f"This chart draws {n} panels; pass ax=None to get a new figure.")
        return ax.get_figure(), [ax]  # type: ignore[return-value]
    plt = pyplot()
    fig, axes = plt.subplots(1, n, figsize=figsize or (4.0 * n, 3.4), squeeze=False)
    plt.close(fig)
    return fig, list(axes[0])
