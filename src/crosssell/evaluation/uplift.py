"""Qini and uplift curves: how well an ordering of clients finds those that proposing helps.

Clients are sorted by their estimated uplift, highest first, and proposed to in that order. On
the decisions of a holdout (treated and held-out clients with their outcomes), the **Qini
curve** (Radcliffe, 2007) counts, among the first ``n`` clients, the take-ups that proposing
added:

``qini(n) = Y_T(n) - Y_H(n) * N_T(n) / N_H(n)``

with ``Y`` the take-ups and ``N`` the clients of each arm among the first ``n`` (``Y_H`` counts
nothing while no held-out client is among them). The **uplift curve** is
``(Y_T(n) / N_T(n) - Y_H(n) / N_H(n)) * n`` (an empty arm's rate counts as 0). Both end at the
effect of proposing to everyone; a good ordering climbs above the straight line to that end
(``random``) early. Clients of equal uplift enter together, so that the order of the rows
changes nothing.

:func:`qini_coefficient` is the area between the Qini curve and the random line, :func:`auuc`
the area under the uplift curve, both per client (curves divided by the number of clients,
over the share of clients targeted from 0 to 1). :func:`top_uplift` says what targeting the top
decile (or any share) captures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell.evaluation._figures import figure_axes

if TYPE_CHECKING:
    from collections.abc import Mapping

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["auuc", "plot_qini", "qini_coefficient", "qini_curve", "top_uplift"]

_FloatVec = npt.NDArray[np.float64]


def _arrays(
    uplift: Any, treated: Any, outcome: Any, owner: str
) -> tuple[_FloatVec, npt.NDArray[np.bool_], _FloatVec]:
    u = np.asarray(uplift, dtype=np.float64).reshape(-1)
    t = np.asarray(treated).reshape(-1)
    if t.dtype.kind in "OUS":
        t = t.astype(str) == "treated"
    t = t.astype(bool)
    y = np.asarray(outcome, dtype=np.float64).reshape(-1)
    if not u.size == t.size == y.size:
        raise ValueError(
            f"{owner}: uplift, treated and outcome must have one entry per client. Got "
            f"{u.size}, {t.size} and {y.size}."
        )
    bad = np.flatnonzero(~np.isfinite(u) | ~np.isfinite(y))
    if bad.size:
        raise ValueError(
            f"{owner}: uplift or outcome is not a finite number in {bad.size} rows (showing "
            f"{min(bad.size, 5)}): rows {bad[:5].tolist()}. Drop or fill them first."
        )
    return u, t, y


def qini_curve(uplift: Any, treated: Any, outcome: Any) -> pd.DataFrame:
    """Return the Qini and uplift curves of an ordering by estimated uplift.

    Parameters
    ----------
    uplift : array-like of float
        The estimated uplift of each client (or any score: higher is proposed to first).
    treated : array-like of bool or str
        Whether each client was proposed to (True, or the arm ``"treated"``) or held out.
    outcome : array-like of float
        What each client did: 1 for a take-up, 0 for none (or a value taken up).

    Returns
    -------
    pandas.DataFrame
        One row per distinct uplift (highest first) after a first row of nobody targeted:
        ``n`` (clients targeted), ``fraction`` (their share), ``n_treated``, ``n_holdout``,
        ``qini`` (take-ups added), ``uplift_curve`` and ``random`` (the Qini of targeting at
        random: ``qini`` of everyone times ``fraction``).

    Raises
    ------
    ValueError
        If the arrays differ in length or hold a non-finite uplift or outcome.

    Examples
    --------
    >>> curve = qini_curve([0.9, 0.5, 0.1, -0.2], [1, 0, 1, 0], [1, 0, 0, 1])
    >>> curve["qini"].tolist()
    [0.0, 1.0, 1.0, 1.0, 0.0]
    >>> curve["uplift_curve"].tolist()
    [0.0, 1.0, 2.0, 1.5, 0.0]
    """
    u, t, y = _arrays(uplift, treated, outcome, "qini_curve")
    order = np.lexsort((np.arange(u.size), -u))
    u, t, y = u[order], t[order], y[order]
    n_t = np.cumsum(t)
    n_h = np.cumsum(~t)
    y_t = np.cumsum(np.where(t, y, 0.0))
    y_h = np.cumsum(np.where(t, 0.0, y))
    # the last row of each run of equal uplift: tied clients enter together
    last = np.flatnonzero(np.r_[u[1:] != u[:-1], True]) if u.size else np.zeros(0, np.int64)
    n_t, n_h, y_t, y_h = n_t[last], n_h[last], y_t[last], y_h[last]
    n = (last + 1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(n_h > 0, y_h * n_t / n_h, 0.0)
        rate_t = np.where(n_t > 0, y_t / n_t, 0.0)
        rate_h = np.where(n_h > 0, y_h / n_h, 0.0)
    qini = y_t - scaled
    total = float(qini[-1]) if qini.size else 0.0
    fraction = n / max(u.size, 1)
    return pd.DataFrame(
        {
            "n": np.r_[0, n].astype(np.int64),
            "fraction": np.r_[0.0, fraction],
            "n_treated": np.r_[0, n_t].astype(np.int64),
            "n_holdout": np.r_[0, n_h].astype(np.int64),
            "qini": np.r_[0.0, qini],
            "uplift_curve": np.r_[0.0, (rate_t - rate_h) * n],
            "random": np.r_[0.0, total * fraction],
        }
    )


def _area(curve: pd.DataFrame, column: str) -> float:
    n = max(int(curve["n"].iloc[-1]), 1)
    x = curve["fraction"].to_numpy(dtype=np.float64)
    v = curve[column].to_numpy(dtype=np.float64) / n
    return float(np.sum((x[1:] - x[:-1]) * (v[1:] + v[:-1]) / 2.0))


def qini_coefficient(uplift: Any, treated: Any, outcome: Any) -> float:
    """Return the area between the Qini curve and the random line, per client.

    Parameters
    ----------
    uplift, treated, outcome : array-like
        As in :func:`qini_curve`.

    Returns
    -------
    float
        Positive when the ordering finds the clients that proposing helps before the others;
        0 for an ordering no better than chance.

    Raises
    ------
    ValueError
        As :func:`qini_curve`.

    Examples
    --------
    >>> qini_coefficient([0.9, 0.5, 0.1, -0.2], [1, 0, 1, 0], [1, 0, 0, 1])
    0.1875
    """
    curve = qini_curve(uplift, treated, outcome)
    return _area(curve, "qini") - _area(curve, "random")


def auuc(uplift: Any, treated: Any, outcome: Any) -> float:
    """Return the area under the uplift curve, per client.

    Parameters
    ----------
    uplift, treated, outcome : array-like
        As in :func:`qini_curve`.

    Returns
    -------
    float
        The area under ``uplift_curve / n_clients`` over the share of clients targeted.

    Raises
    ------
    ValueError
        As :func:`qini_curve`.

    Examples
    --------
    >>> auuc([0.9, 0.5, 0.1, -0.2], [1, 0, 1, 0], [1, 0, 0, 1])
    0.28125
    """
    return _area(qini_curve(uplift, treated, outcome), "uplift_curve")


def top_uplift(
    uplift: Any, treated: Any, outcome: Any, *, share: float = 0.1, value: Any = None
) -> dict[str, float]:
    """Say what proposing to the top ``share`` of clients by estimated uplift captures.

    Parameters
    ----------
    uplift, treated, outcome : array-like
        As in :func:`qini_curve`.
    share : float, default 0.1
        The share of clients targeted, highest uplift first (the top decile by default); ties
        at the cut enter together.
    value : array-like of float, optional
        The value each client took up (0 when none), for the value captured.

    Returns
    -------
    dict
        ``n`` (clients targeted), ``take_up_treated`` and ``take_up_holdout`` (the arms' rates
        among them), ``uplift`` (their difference), ``added`` (take-ups that proposing to them
        all adds: ``uplift * n``), ``share_of_added`` (of the take-ups proposing to everyone
        adds), and with ``value``: ``value_added`` (the same for value).

    Raises
    ------
    ValueError
        If ``share`` is not in (0, 1], or as :func:`qini_curve`.

    Examples
    --------
    >>> top = top_uplift([0.9, 0.5, 0.1, -0.2], [1, 0, 1, 0], [1, 0, 0, 1], share=0.5)
    >>> top["n"], top["uplift"], top["added"]
    (2.0, 1.0, 2.0)
    """
    if not 0.0 < float(share) <= 1.0:
        raise ValueError(f"top_uplift: share must be in (0, 1]. Got {share!r}.")
    u, t, y = _arrays(uplift, treated, outcome, "top_uplift")
    cut = np.quantile(u, 1.0 - float(share), method="higher") if u.size else 0.0
    top = u >= cut

    def added(v: _FloatVec, rows: npt.NDArray[np.bool_]) -> tuple[float, float, float]:
        a, b = v[rows & t], v[rows & ~t]
        rate_t = float(a.mean()) if a.size else 0.0
        rate_h = float(b.mean()) if b.size else 0.0
        return rate_t, rate_h, (rate_t - rate_h) * float(rows.sum())

    rate_t, rate_h, gain = added(y, top)
    everyone = added(y, np.ones(u.size, dtype=bool))[2]
    out = {
        "n": float(top.sum()),
        "take_up_treated": rate_t,
        "take_up_holdout": rate_h,
        "uplift": rate_t - rate_h,
        "added": gain,
        "share_of_added": gain / everyone if everyone else float("nan"),
    }
    if value is not None:
        v = np.asarray(value, dtype=np.float64).reshape(-1)
        if v.size != u.size:
            raise ValueError(
                f"top_uplift: value must have one entry per client ({u.size}). Got {v.size}."
            )
        out["value_added"] = added(np.nan_to_num(v, nan=0.0), top)[2]
    return out


def plot_qini(
    curves: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    column: str = "qini",
    ax: Axes | None = None,
) -> Figure:
    """Draw Qini (or uplift) curves, one per ordering, with the random line.

    Parameters
    ----------
    curves : DataFrame or mapping of str to DataFrame
        Results of :func:`qini_curve`, by name (``{"model": ..., "truth": ...}``).
    column : {"qini", "uplift_curve"}, default "qini"
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``column`` is neither.

    Examples
    --------
    >>> curve = qini_curve([0.9, 0.5, 0.1, -0.2], [1, 0, 1, 0], [1, 0, 0, 1])
    >>> plot_qini({"model": curve}).axes[0].get_ylabel()
    'take-ups added (qini)'
    """
    if column not in ("qini", "uplift_curve"):
        raise ValueError(f"column must be 'qini' or 'uplift_curve'. Got {column!r}.")
    named = {"": curves} if isinstance(curves, pd.DataFrame) else dict(curves)
    fig, (axis,) = figure_axes(ax, figsize=(5.0, 3.6))
    for i, (name, curve) in enumerate(named.items()):
        axis.plot(curve["fraction"], curve[column], color=f"C{i}", label=name or None)
    if named:
        last = next(iter(named.values()))
        axis.plot(
            [0.0, 1.0],
            [0.0, float(last[column].iloc[-1])],
            color="0.5",
            linestyle="--",
            label="random",
        )
    axis.set_xlabel("share of clients proposed to, highest uplift first")
    axis.set_ylabel(f"take-ups added ({column})")
    axis.legend(loc="best")
    return fig
