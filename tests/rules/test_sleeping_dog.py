"""SleepingDog: no offer where proposing it puts clients off, said with the two take-ups."""

from __future__ import annotations

import functools

import pandas as pd
import pytest

import crosssell as cs
from crosssell.rules import RuleContext, SleepingDog, route_sales

TRUTH = {"gain": 0.15, "flat": 0.0, "put_off": -0.12}


@functools.cache
def _held() -> tuple[cs.datasets.Campaign, SleepingDog]:
    sim = cs.datasets.simulate_uplift(TRUTH, n_clients=3000, seed=0)
    model = cs.scorers.Uplift(n_boot=30).fit(sim.decisions, sim.book)
    return sim, SleepingDog.from_model(model)


def test_it_blocks_exactly_the_segment_that_proposing_puts_off():
    """Check that the held pairs are those of the negative segment, and all of them."""
    sim, rule = _held()
    segment = sim.book.clients.set_index("client_id")["segment"]
    held = sorted({client for client, _ in rule.uplift})
    assert set(segment[held]) == {"put_off"}
    assert len(held) == int((segment == "put_off").sum())
    assert {product for _, product in rule.uplift} == {"OFFER"}


def test_with_the_transformed_outcome_it_blocks_no_other_segment():
    """Check the other learner: no pair of another segment, nearly all of the negative one."""
    sim, _ = _held()
    model = cs.scorers.Uplift(learner="transformed_outcome", n_boot=30)
    rule = SleepingDog.from_model(model.fit(sim.decisions, sim.book))
    segment = sim.book.clients.set_index("client_id")["segment"]
    held = sorted({client for client, _ in rule.uplift})
    assert set(segment[held]) == {"put_off"}
    assert len(held) >= 0.95 * int((segment == "put_off").sum())


def test_the_block_says_how_often_clients_like_this_took_it():
    """Check the sentence: the take-up when proposed is below the take-up when not."""
    sim, rule = _held()
    blocks = rule.blocks(RuleContext.at(sim.book, rule.as_of))
    assert len(blocks) == len(rule.uplift)
    sentence = str(blocks.detail[0])
    assert sentence.startswith("clients like this took it less often when proposed: ")
    proposed, unasked = (int(part.split("%")[0]) for part in sentence.split(": ")[1].split(", "))
    assert proposed < unasked


def test_a_recommender_holding_it_offers_nothing_to_the_held_and_is_saved(tmp_path):
    """Check that no held pair is offered, the report says why, and a save round trip."""
    sim, rule = _held()
    day = rule.as_of  # the rule knows the campaign's outcomes: it serves after them
    rec = cs.Recommender(
        scorer=cs.scorers.Popularity(), policy=route_sales().with_rules(rule), k=1
    ).fit(sim.book, day)
    offers = rec.recommend(explain=False)
    offered = set(zip(offers["client_id"], offers["product_id"], strict=True))
    assert not offered & set(rule.uplift)
    assert "sleeping_dog" in set(rec.suppressed()["rule"])
    loaded = cs.load(rec.save(tmp_path / "model.crosssell"))
    assert loaded.recommend(explain=False).equals(offers)


def test_bad_uplift_tables_are_refused():
    """Check that a chance outside [0, 1] or a key that is not a pair is refused."""
    with pytest.raises(ValueError, match="uplift"):
        SleepingDog(uplift={("C1", "P1"): (-0.1, -0.01, 1.5, 0.2)})
    with pytest.raises(ValueError, match="uplift"):
        SleepingDog(uplift={"C1": (-0.1, -0.01, 0.1, 0.2)})  # type: ignore[dict-item]


def test_before_the_data_it_learned_from_it_blocks_nothing_and_warns():
    """Check that a cutoff earlier than the estimates' data never reads them (no look-ahead)."""

    from crosssell import Book
    from crosssell.rules import RuleContext, SleepingDog

    c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"], "start_date": ["2024-01-01"]})
    rule = SleepingDog(as_of="2024-06-30", uplift={("C1", "P1"): (-0.07, -0.01, 0.12, 0.19)})
    book = Book.from_frames(contracts=c)
    assert len(rule.blocks(RuleContext.at(book, "2024-07-31"))) == 1
    with pytest.warns(cs.CrossSellWarning, match="would look ahead"):
        assert len(rule.blocks(RuleContext.at(book, "2024-03-31"))) == 0
