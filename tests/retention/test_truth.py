"""The retention model against the true churn hazards of the synthetic book."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

import crosssell as cs
from crosssell.evaluation import concordance
from crosssell.retention import RetentionModel, observed_departures

AS_OF = "2024-12-31"


def test_the_model_orders_clients_as_well_as_the_true_hazard_does() -> None:
    """Check that the model's C-index on who left is at least the true hazard's own, less 0.03.

    The true risk is the generator's: 1 for a client already churning (it lets its contracts
    lapse), else the chance of starting to churn within the horizon, driven by health (read
    through satisfaction) and recent complaints. The model also sees when contracts end, so it
    may do better than the hazard alone; it must not do worse. It must also find the clients
    that are churning, a state nobody records.
    """
    book = cs.datasets.synthetic_book(3000, seed=3)
    truth = cs.datasets.synthetic_churn(3000, seed=3).within(AS_OF, "180D")
    risk = RetentionModel(contracts=False).fit(book, AS_OF).predict()
    seen = observed_departures(book, AS_OF, "180D")
    frame = seen.merge(risk, on="client_id").merge(truth, on="client_id")
    assert len(frame) > 2000
    event = frame["left"].to_numpy()
    days = np.minimum(frame["days"].to_numpy(), 180)
    c_model = concordance(frame["p_leave"], days, event)
    c_truth = concordance(frame["probability"], days, event)
    assert c_model >= c_truth - 0.03, (c_model, c_truth)
    assert roc_auc_score(frame["churning"], frame["p_leave"]) > 0.75


def test_recording_the_hazards_leaves_the_demo_book_unchanged() -> None:
    """Check that the churn hazards come from the same draws as the shipped demo book."""
    from crosssell.datasets._synthetic import DEMO_SETTINGS, _simulate

    frames, truth = _simulate("demo", dict(DEMO_SETTINGS), truth=False, churn=True)
    shipped = cs.datasets.demo_frames()
    for name, frame in shipped.items():
        assert (
            frame.astype(str)
            .reset_index(drop=True)
            .equals(frames[name].astype(str).reset_index(drop=True))
        ), name
    assert truth.monthly["hazard"].between(0, 1).all()
    assert truth.starts["churn_start"].notna().sum() > 0
