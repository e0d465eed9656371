"""The decision log: decisions, reactions and holdouts, on SQLite and on a real PostgreSQL.

The PostgreSQL half runs when ``CROSSSELL_TEST_PG_URL`` names a database (``.ci/run`` starts a
throwaway server and sets it); SQLite always runs. No mock database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell.decisions import (
    DECISION_COLUMNS,
    SCHEMA_VERSION,
    DecisionLog,
    Holdout,
    decisions_from_offers,
    policy_id,
)
from crosssell.exceptions import SchemaError

pytest.importorskip("sqlalchemy")

PG_URL = os.environ.get("CROSSSELL_TEST_PG_URL")
TABLES = ("crosssell_reactions", "crosssell_decisions", "crosssell_schema")


def _drop_tables(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or the test PostgreSQL database with no log tables."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crosssell.db'}"
    if not PG_URL:
        pytest.skip("CROSSSELL_TEST_PG_URL is not set (.ci/run starts a PostgreSQL server)")
    _drop_tables(PG_URL)
    return PG_URL


def _offers(n: int, client_prefix: str = "C") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "decision_id": [f"{client_prefix}-{i:07d}" for i in range(n)],
            "decided_at": pd.Timestamp("2025-06-30 08:00"),
            "as_of": pd.Timestamp("2025-06-30"),
            "client_id": [f"{client_prefix}{i}" for i in range(n)],
            "product_id": "P1",
            "action": "offer",
            "offer_type": "cross_sell",
            "rank": 1,
            "propensity": 0.25,
            "value": 100.0,
            "priority": 25.0,
            "reason": "Clients who hold P0 often hold P1.",
            "shown_probability": 1.0,
            "model_id": "m1",
            "arm": "treated",
        }
    )


# -- decisions -------------------------------------------------------------------------------


def test_decisions_round_trip_with_their_types(url: str) -> None:
    with DecisionLog(url) as log:
        written = log.record(_offers(3))
        back = log.decisions()
    assert back.columns.tolist() == list(DECISION_COLUMNS)
    assert back["decision_id"].tolist() == written["decision_id"].tolist()
    assert back["client_id"].tolist() == ["C0", "C1", "C2"]
    assert back["propensity"].tolist() == [0.25] * 3
    assert back["rank"].dtype == "Int64"
    assert back["decided_at"].iloc[0] == pd.Timestamp("2025-06-30 08:00")
    assert back["policy_id"].isna().all()


def test_sending_the_same_batch_again_changes_nothing(url: str) -> None:
    with DecisionLog(url) as log:
        batch = _offers(5)
        log.record(batch)
        changed = batch.assign(propensity=0.9)
        log.record(changed)
        back = log.decisions()
    assert len(back) == 5
    assert (back["propensity"] == 0.25).all()


def test_opening_a_log_twice_keeps_its_schema_and_rows(url: str) -> None:
    with DecisionLog(url) as log:
        log.record(_offers(2))
    with DecisionLog(url) as again:
        assert again.schema_version == SCHEMA_VERSION
        assert len(again.decisions()) == 2


def test_a_bad_batch_is_refused_whole_naming_rows(url: str) -> None:
    batch = _offers(4)
    batch.loc[[1, 3], "action"] = "call_him"
    with DecisionLog(url) as log:
        with pytest.raises(SchemaError) as err:
            log.record(batch)
        assert len(log.decisions()) == 0
    text = str(err.value)
    for part in ("action", "2 rows", "row 1", "row 3"):
        assert part in text


def test_a_repeated_id_within_a_batch_is_refused(url: str) -> None:
    batch = _offers(3)
    batch.loc[2, "decision_id"] = batch.loc[0, "decision_id"]
    with DecisionLog(url) as log, pytest.raises(SchemaError, match="decision_id"):
        log.record(batch)


def test_no_offer_is_a_decision_with_its_reason(url: str) -> None:
    none = pd.DataFrame(
        {"client_id": ["C9"], "reason": ["a complaint is open"], "rules": [("open_complaint",)]}
    )
    rows = decisions_from_offers(_offers(0), none, as_of="2025-06-30", model_id="m1")
    with DecisionLog(url) as log:
        log.record(rows)
        back = log.decisions()
    assert back[["client_id", "action", "rule", "reason"]].values.tolist() == [
        ["C9", "no_offer", "open_complaint", "a complaint is open"]
    ]


def test_parquet_export_carries_the_reactions(url: str, tmp_path: Path) -> None:
    with DecisionLog(url) as log:
        ids = log.record(_offers(2))["decision_id"].tolist()
        log.react(ids[0], "accepted", at="2025-07-03")
        path = log.to_parquet(tmp_path / "decisions.parquet")
    back = pd.read_parquet(path)
    assert len(back) == 2
    by_id = back.set_index("decision_id")["outcomes"]
    assert list(by_id[ids[0]]) == ["accepted"]
    assert list(by_id[ids[1]]) == []


# -- reactions -------------------------------------------------------------------------------


def test_reactions_are_idempotent_per_decision_and_outcome(url: str) -> None:
    with DecisionLog(url) as log:
        ids = log.record(_offers(2))["decision_id"].tolist()
        log.react(ids[0], "ignored", at="2025-07-01")
        log.react(ids[0], "accepted", at="2025-07-05", value=1200.0, note="signed")
        log.react(ids[0], "accepted", at="2025-07-06")  # sent again: changes nothing
        reactions = log.reactions()
    assert reactions["outcome"].tolist() == ["ignored", "accepted"]
    assert reactions["value"].iloc[1] == 1200.0
    assert reactions["reacted_at"].iloc[1] == pd.Timestamp("2025-07-05")


def test_an_unknown_decision_or_an_early_reaction_is_refused(url: str) -> None:
    with DecisionLog(url) as log:
        first = log.record(_offers(1))["decision_id"].iloc[0]
        with pytest.raises(SchemaError, match="no decision with this id"):
            log.react("no-such-decision", "accepted", at="2025-07-01")
        with pytest.raises(SchemaError, match="before its decision"):
            log.react(first, "accepted", at="2025-06-01")
        with pytest.raises(SchemaError, match="outcome must be one of"):
            log.react(first, "maybe", at="2025-07-01")
        assert log.reactions().empty


def test_react_many_keeps_the_good_rows_and_reports_the_rest(url: str) -> None:
    with DecisionLog(url) as log:
        ids = log.record(_offers(3))["decision_id"].tolist()
        report = log.react_many(
            pd.DataFrame(
                {
                    "decision_id": [ids[0], ids[1], "nope", ids[2], ids[0]],
                    "outcome": ["accepted", "declined", "accepted", "accepted", "accepted"],
                    "reacted_at": ["2025-07-01", "2025-07-02", "2025-07-01", "2025-05-01", None],
                }
            )
        )
        assert report.recorded == 2
        assert report.repeated == 0
        assert report.rejected["row"].tolist() == [2, 3]
        assert report.rejected["column"].tolist() == ["decision_id", "reacted_at"]
        again = log.react_many(pd.DataFrame({"decision_id": [ids[0]], "outcome": ["accepted"]}))
        assert (again.recorded, again.repeated) == (0, 1)


def test_reactions_become_events_that_the_next_fit_respects(url: str) -> None:
    """A declined offer is an offer_declined event: the route-sales cool-off then blocks it."""
    book = cs.datasets.demo()
    rec = cs.Recommender(policy=cs.rules.route_sales(), k=1).fit(book, "2025-06-30")
    with DecisionLog(url) as log:
        offers = rec.recommend(["C0001", "C0002"], log=log)
        declined = offers.iloc[0]
        log.react(declined["decision_id"], "declined")  # now, after the decision
        events = log.events()
    assert events[["client_id", "type", "product_id"]].values.tolist() == [
        [declined["client_id"], "offer_declined", declined["product_id"]]
    ]
    later = cs.Book.from_frames(
        contracts=book.contracts,
        products=book.products,
        clients=book.clients,
        events=pd.concat([book.events, events], ignore_index=True),
    )
    next_day = events["date"].iloc[0].normalize() + pd.Timedelta(days=1)
    again = cs.Recommender(policy=cs.rules.route_sales(), k=1).fit(later, next_day)
    assert (
        declined["product_id"]
        not in again.recommend([declined["client_id"]])["product_id"].tolist()
    )
    assert "declin" in again.why_not(declined["client_id"], declined["product_id"])


# -- schema ----------------------------------------------------------------------------------


def test_a_version_1_log_is_migrated_and_keeps_its_rows(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE crosssell_schema (version INTEGER NOT NULL, "
                "migrated_at TIMESTAMP NOT NULL)"
            )
        )
        conn.execute(sa.text("INSERT INTO crosssell_schema VALUES (1, '2025-01-01 00:00:00')"))
        conn.execute(
            sa.text(
                "CREATE TABLE crosssell_decisions (decision_id VARCHAR(64) PRIMARY KEY, "
                "decided_at TIMESTAMP NOT NULL, as_of TIMESTAMP NOT NULL, client_id VARCHAR(255) "
                "NOT NULL, product_id VARCHAR(255), action VARCHAR(32) NOT NULL, offer_type "
                "VARCHAR(32), rank INTEGER, propensity FLOAT, value FLOAT, priority FLOAT, reason "
                "TEXT, rule VARCHAR(255), shown_probability FLOAT NOT NULL, model_id VARCHAR(64) "
                "NOT NULL, arm VARCHAR(16) NOT NULL)"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TABLE crosssell_reactions (decision_id VARCHAR(64) REFERENCES "
                "crosssell_decisions(decision_id), outcome VARCHAR(16), reacted_at TIMESTAMP NOT "
                "NULL, value FLOAT, note TEXT, PRIMARY KEY (decision_id, outcome))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO crosssell_decisions VALUES ('old-1', '2025-01-02 00:00:00', "
                "'2025-01-01 00:00:00', 'C1', 'P1', 'offer', 'upsell', 1, 0.2, 10.0, 2.0, 'r', "
                "NULL, 1.0, 'm0', 'treated')"
            )
        )
    engine.dispose()
    with DecisionLog(url) as log:
        assert log.schema_version == SCHEMA_VERSION
        old = log.decisions()
        assert old["decision_id"].tolist() == ["old-1"]
        assert old["policy_id"].isna().all()
        log.record(_offers(1).assign(policy_id="p1", campaign="q4"))
        assert log.decisions()["campaign"].tolist() == [None, "q4"]
    with DecisionLog(url) as again:  # migrating is done once
        assert len(again.decisions()) == 2


def test_a_log_from_a_newer_release_is_refused(url: str) -> None:
    import sqlalchemy as sa

    DecisionLog(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO crosssell_schema VALUES ({SCHEMA_VERSION + 1}, '2030-01-01 00:00:00')"
            )
        )
    engine.dispose()
    with pytest.raises(ValueError, match="Upgrade crosssell"):
        DecisionLog(url)


# -- crashes and concurrent writers ---------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from crosssell.decisions import DecisionLog

    url, prefix, n, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    log = DecisionLog(url)
    for b in range(batches):
        rows = pd.DataFrame({
            "decision_id": [f"{prefix}-{b}-{i}" for i in range(n)],
            "client_id": [f"{prefix}{i}" for i in range(n)],
            "action": "no_offer", "as_of": "2025-06-30", "reason": "nothing fits",
        })
        log.record(rows)
        print(f"batch {b}", flush=True)
    log.close()
    """
)


def _writer(url: str, prefix: str, n: int, batches: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, url, prefix, str(n), str(batches)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_writer_killed_mid_batch_leaves_earlier_batches_whole(url: str) -> None:
    DecisionLog(url).close()  # the schema exists before the writer starts
    proc = _writer(url, "K", 200_000, 5)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first batch is committed
    assert first.strip() == "batch 0", proc.stderr.read() if proc.stderr else ""
    time.sleep(0.5)  # well into the second batch
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    with DecisionLog(url) as log:
        n = len(log.decisions())
    assert n % 200_000 == 0, f"a half batch was left: {n} rows"
    assert 200_000 <= n < 1_000_000


@pytest.mark.slow
def test_two_writers_at_once_lose_nothing(url: str) -> None:
    DecisionLog(url).close()
    procs = [_writer(url, prefix, 2_000, 10) for prefix in ("A", "B")]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with DecisionLog(url) as log:
        back = log.decisions()
    assert len(back) == 40_000
    assert back["decision_id"].is_unique


# -- holdouts --------------------------------------------------------------------------------

ids = st.lists(st.text(min_size=1, max_size=8).map(str.strip).filter(bool), max_size=40)


@settings(max_examples=60, deadline=None)
@given(ids, st.randoms(use_true_random=False), st.floats(0.0, 0.99))
def test_a_clients_arm_never_depends_on_the_others(clients: list[str], rnd, share: float) -> None:
    h = Holdout(share=share, salt="2026-Q4")
    alone = {c: h.arms([c])[0] for c in clients}
    shuffled = list(clients)
    rnd.shuffle(shuffled)
    arms = h.arms([*shuffled, "other", "clients"])[: len(shuffled)]
    together = dict(zip(shuffled, arms, strict=True))
    assert together == alone


def test_the_share_holds_within_binomial_error() -> None:
    n = 40_000
    clients = [f"C{i:06d}" for i in range(n)]
    for share in (0.05, 0.1, 0.3):
        for salt in ("a", "2026-Q4"):
            held = (Holdout(share=share, salt=salt).arms(clients) == "holdout").mean()
            assert abs(held - share) < 4 * np.sqrt(share * (1 - share) / n), (share, salt, held)


def test_salts_and_campaigns_draw_other_groups() -> None:
    clients = [f"C{i}" for i in range(2_000)]
    a = Holdout(0.5, "q3").arms(clients)
    assert (a != Holdout(0.5, "q4").arms(clients)).mean() > 0.4
    assert (a != Holdout(0.5, "q3").arms(clients, campaign="security")).mean() > 0.4
    assert (a == Holdout(0.5, "q3").arms([f" C{i} " for i in range(2_000)])).all()


@pytest.mark.parametrize("share", [-0.1, 1.0, "0.1"])
def test_a_bad_share_is_refused(share: object) -> None:
    with pytest.raises((ValueError, TypeError), match="share"):
        Holdout(share=share)  # type: ignore[arg-type]


# -- where users meet it ---------------------------------------------------------------------


def test_recommend_records_offers_no_offers_and_the_holdout(url: str) -> None:
    rec = cs.Recommender(policy=cs.rules.route_sales(), k=2).fit(cs.datasets.demo(), "2025-06-30")
    plain = rec.recommend()
    holdout = Holdout(share=0.2, salt="test")
    with DecisionLog(url) as log:
        shown = rec.recommend(log=log, holdout=holdout, campaign="q3")
        decisions = log.decisions()
    held = set(decisions.loc[decisions["arm"] == "holdout", "client_id"])
    assert held
    assert not held & set(shown["client_id"])
    # the treated clients get exactly the plain offers; the held-out ones are recorded unshown
    kept = plain[~plain["client_id"].isin(held)].reset_index(drop=True)
    pd.testing.assert_frame_equal(shown.drop(columns="decision_id"), kept)
    offers = decisions[decisions["action"] == "offer"]
    assert len(offers) == len(plain)
    assert (offers.loc[offers["arm"] == "holdout", "shown_probability"] == 0).all()
    assert (offers.loc[offers["arm"] == "treated", "shown_probability"] == 1).all()
    assert set(shown["decision_id"]) <= set(offers["decision_id"])
    # every client with no offer is a no_offer decision with its reason
    none = decisions[decisions["action"] == "no_offer"]
    assert set(none["client_id"]) == set(rec.no_offer_report()["client_id"])
    assert none["reason"].str.len().gt(0).all()
    assert set(decisions["model_id"]) == {rec.model_id_}
    assert set(decisions["policy_id"]) == {policy_id(rec.policy)}
    assert set(decisions["campaign"]) == {"q3"}


def test_recommend_one_carries_its_decision_ids(tmp_path: Path) -> None:
    rec = cs.Recommender(policy=cs.rules.route_sales(), k=2).fit(cs.datasets.demo(), "2025-06-30")
    with DecisionLog(tmp_path / "log.db") as log:
        offers = rec.recommend_one("C0001", log=log)
        complaint = {"client_id": ["C0001"], "date": ["2025-06-30"], "type": ["complaint_opened"]}
        assert rec.recommend_one("C0001", events=complaint, log=log) == []
        back = log.decisions()
    assert [o.decision_id for o in offers] == back["decision_id"].iloc[:2].tolist()
    assert offers[0].to_dict()["decision_id"] == offers[0].decision_id
    last = back.iloc[-1]
    assert last["action"] == "no_offer"
    assert "complaint" in last["reason"]


def test_policy_id_follows_the_parameters() -> None:
    a = policy_id(cs.rules.route_sales())
    assert a == policy_id(cs.rules.route_sales())
    assert a != policy_id(cs.rules.route_sales(decline_days=30))
    assert policy_id(None) is None


def test_the_plan_withholds_proposals_only_and_records_every_action(tmp_path: Path) -> None:
    book = cs.datasets.demo()
    rec = cs.Recommender(policy=cs.rules.route_sales()).fit(book, cs.datasets.demo_as_of())
    plain = cs.plan(rec).actions.set_index("client_id")["action"].astype(str)
    holdout = Holdout(share=0.3, salt="plan")
    with DecisionLog(tmp_path / "log.db") as log:
        actions = cs.plan(rec, holdout=holdout, log=log, campaign="q3").actions
        decisions = log.decisions()
    now = actions.set_index("client_id")["action"].astype(str)
    held = set(decisions.loc[decisions["arm"] == "holdout", "client_id"])
    # retention is never withheld; only held-out clients lose their proposal
    retention = plain.isin(["resolve_complaint", "renew", "reorder"])
    assert (now[retention] == plain[retention]).all()
    lost = plain[(plain == "propose") & (now != "propose")].index
    assert set(lost) <= held
    assert not (now[list(held & set(now.index))] == "propose").any()
    # one decision per client, plus the withheld proposals, unshown
    mine = decisions[decisions["shown_probability"] == 1.0]
    assert sorted(mine["client_id"]) == sorted(actions["client_id"])
    assert set(mine["decision_id"]) == set(actions["decision_id"])
    hidden = decisions[decisions["shown_probability"] == 0.0]
    assert sorted(hidden["client_id"]) == sorted(lost)
    assert (hidden["action"] == "offer").all()
    assert (hidden["arm"] == "holdout").all()
