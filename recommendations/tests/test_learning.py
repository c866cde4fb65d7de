"""The engine learns each store: order signals and per-store self-tuning on small constructed stores whose right
answer is known by construction."""

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from catalog_sync.models import OrderLine, customer_key
from catalog_sync.tests.factories import ProductFactory
from merchants.tests.factories import StoreFactory
from recommendations.engine import CatalogItem, EngineConfig, Recommender
from recommendations.engine.behaviour import Order, build_behaviour, hold_out_last_items, index_orders
from recommendations.engine.loader import build_recommender_for_store, load_orders
from recommendations.engine.tuning import TUNING_GRID, significantly_better
from recommendations.evaluation import build_cases, read_interactions, training_orders

TINY = Path(__file__).parent / "data" / "tiny_interactions.json"
DAY = 86400.0
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


def opaque_catalog(n: int) -> list[CatalogItem]:
    """Items whose titles say nothing about what is bought with what: unique nonsense words per item."""
    rng = random.Random(7)
    return [
        CatalogItem(id=f"i{k}", title=" ".join(rng.sample(WORDS, 3)) + f" model {k}x{rng.randrange(10**6)}")
        for k in range(n)
    ]


def pair_orders(customers: int, pairs: int, *, seed: int = 1) -> list[Order]:
    """Each customer buys a_j in one order and its fixed companion b_j (j + pairs) in the next order."""
    rng = random.Random(seed)
    orders = []
    for c in range(customers):
        j = rng.randrange(pairs)
        start = c * DAY
        orders.append(Order(customer=f"c{c}", when=start, items=(f"i{j}",)))
        orders.append(Order(customer=f"c{c}", when=start + 3600, items=(f"i{j + pairs}",)))
    return orders


def test_bought_next_wins_where_text_is_useless_and_tuning_turns_it_on():
    # given: 40 products, 20 fixed (a, b) pairs, titles unrelated to the pairs, 300 customers who buy a then b
    items = opaque_catalog(40)
    orders = pair_orders(300, 20)

    # when
    engine = Recommender.build(items, orders=orders)
    untuned = Recommender.build(items, orders=orders, config=EngineConfig(self_tune=False))

    # then: the companion comes first for every a; the tuner weighs the customer/sequence signals up
    assert engine.tuning is not None
    assert engine.tuning.cases == 300  # two folds of customers, each scored on the other fold's full orders
    assert engine.tuning.tuned_ndcg == pytest.approx(1.0)
    assert [engine.recommend(query_id=f"i{j}", placement="product", limit=1)[0].id for j in range(20)] == [
        f"i{j + 20}" for j in range(20)
    ]
    assert engine.tuning.tuned_ndcg > engine.tuning.default_ndcg
    assert max(engine.config.customer_weight, engine.config.sequence_weight) > untuned.config.customer_weight
    assert engine.recommend(query_id="i3", placement="product", limit=1)[0].reason == "bought_together"


def test_text_wins_with_no_history_and_nothing_is_tuned():
    # given: a catalog where one item's title matches the query's and no orders at all
    items = [
        CatalogItem(id="pen-blue", title="Blue gel pen fine point"),
        CatalogItem(id="pen-black", title="Black gel pen fine point"),
        CatalogItem(id="stapler", title="Heavy duty stapler"),
        CatalogItem(id="tray", title="Stackable paper tray"),
    ]

    # when
    engine = Recommender.build(items)

    # then
    assert engine.tuning is None
    assert engine.config == EngineConfig()
    assert engine.recommend(query_id="pen-blue", placement="product", limit=1)[0].id == "pen-black"


def test_tuning_keeps_text_when_orders_are_noise_and_text_predicts():
    # given: 30 product families of two near-synonymous titles; each customer buys one of a family, then its sibling,
    # while every order also holds one random item (noise that co-occurs with anything)
    families = [("mug", "cup"), ("pen", "biro"), ("lamp", "light"), ("sofa", "couch"), ("rug", "carpet")]
    colours = ("red", "blue", "green", "black", "white", "grey")
    items: list[CatalogItem] = []
    for f, (a, b) in enumerate(families):
        for c, colour in enumerate(colours):
            items.append(CatalogItem(id=f"{f}-{c}-a", title=f"{colour} {a} ref{f}{c}"))
            items.append(CatalogItem(id=f"{f}-{c}-b", title=f"{b} holder ref{f}{c}"))
    rng = random.Random(3)
    ids = [item.id for item in items]
    orders = []
    for n in range(200):
        f, c = rng.randrange(len(families)), rng.randrange(len(colours))
        orders.append(Order(customer=f"c{n}", when=n * DAY, items=(f"{f}-{c}-a", rng.choice(ids))))
        orders.append(Order(customer=f"c{n}", when=n * DAY + 60, items=(f"{f}-{c}-b", rng.choice(ids))))

    # when
    engine = Recommender.build(items, orders=orders)

    # then: text finds the sibling; the tuner keeps popularity a tie-breaker (one grid step at most: counts here are
    # flat up to noise) and does not turn trending on
    assert engine.tuning is not None
    assert engine.recommend(query_id="2-3-a", placement="product", limit=1)[0].id == "2-3-b"
    assert engine.config.popularity_weight <= 0.03
    assert engine.config.product_trending_weight == 0.0


def test_tuning_picks_popularity_where_everyone_buys_the_bestsellers():
    # given: opaque titles; every customer's next item is one of three bestsellers, whatever they bought before
    items = opaque_catalog(60)
    rng = random.Random(5)
    orders = []
    for n in range(300):
        first = f"i{rng.randrange(3, 60)}"
        best = f"i{rng.choices(range(3), weights=(6, 3, 1))[0]}"
        orders.append(Order(customer=f"c{n}", when=n * DAY, items=(first,)))
        orders.append(Order(customer=f"c{n}", when=n * DAY + 60, items=(best,)))

    # when
    engine = Recommender.build(items, orders=orders, config=EngineConfig(copurchase_weight=0.0, customer_weight=0.0))

    # then
    assert engine.tuning is not None
    assert engine.config.popularity_weight + engine.config.product_trending_weight >= 0.3
    assert [r.id for r in engine.recommend(query_id="i40", placement="product", limit=3)] == ["i0", "i1", "i2"]


def test_sequence_signal_is_directed_and_baskets_are_symmetric():
    # given
    index = {x: i for i, x in enumerate("abcd")}
    orders = index_orders(
        [
            Order(customer="k1", when=1.0, items=("a",)),
            Order(customer="k1", when=2.0, items=("b", "c")),
            Order(customer="", when=3.0, items=("c", "d")),
        ],
        index,
    )

    # when
    behaviour = build_behaviour(orders, n=4)

    # then
    seq, basket, customer = (m.toarray() for m in (behaviour.sequence, behaviour.basket, behaviour.customer))
    assert seq[0, 1] > seq[0, 2] > 0 and seq[1, 0] == 0 and seq[1, 2] > 0  # a -> b next, c one further
    assert basket[1, 2] == basket[2, 1] > 0 and basket[0, 1] == 0  # only items of one order
    assert customer[0, 2] > 0 and customer[2, 3] == 0  # across k1's orders; the guest links no orders
    assert behaviour.popularity.tolist() == [1.0, 1.0, 2.0, 1.0]


def test_linear_signal_is_the_closed_form_ease_solution():
    # given: k1 and k2 buy a and b (in two orders), k3 buys a only
    index = {"a": 0, "b": 1}
    orders = index_orders(
        [
            Order(customer="k1", when=1.0, items=("a",)),
            Order(customer="k1", when=2.0, items=("b",)),
            Order(customer="k2", when=3.0, items=("a", "b")),
            Order(customer="k3", when=4.0, items=("a",)),
        ],
        index,
    )

    # when
    linear = build_behaviour(orders, n=2).linear.toarray()

    # then: by hand, G = X'X = [[3, 2], [2, 2]], l2 = 10 * mean(diag G) = 25, P = (G + 25 I)^-1 = [[27, -2], [-2, 28]]
    # / 752, B(a, b) = -P(a, b) / P(b, b) = 2 / 28 and B(b, a) = 2 / 27; the diagonal is zero
    assert linear[0, 1] == pytest.approx(1 / 14)
    assert linear[1, 0] == pytest.approx(2 / 27)
    assert linear[0, 0] == linear[1, 1] == 0.0


def test_linear_signal_is_solved_over_the_most_bought_items_only(monkeypatch):
    # given: a bought by three customers, b by two, c by one; room for two items
    from recommendations.engine import behaviour

    monkeypatch.setattr(behaviour, "LINEAR_MAX_ITEMS", 2)
    index = {x: i for i, x in enumerate("abc")}
    orders = index_orders(
        [
            Order(customer="k1", when=1.0, items=("a", "b", "c")),
            Order(customer="k2", when=2.0, items=("a", "b")),
            Order(customer="k3", when=3.0, items=("a",)),
        ],
        index,
    )

    # when
    linear = build_behaviour(orders, n=3).linear.toarray()

    # then: c has no row and no column; a and b are linked both ways
    assert linear[2].tolist() == [0.0, 0.0, 0.0] and linear[:, 2].tolist() == [0.0, 0.0, 0.0]
    assert linear[0, 1] > 0 and linear[1, 0] > 0


def test_linear_signal_alone_finds_what_is_bought_next_where_text_is_useless():
    # given: the (a, b) pair store of the first test, every other order signal switched off; the linear weight at the
    # top of the tuning grid (a perfect companion bought by 11 customers weighs 11 / (11 + l2) with l2 = 10 * 15)
    items = opaque_catalog(40)
    orders = pair_orders(300, 20)
    config = EngineConfig(
        self_tune=False, copurchase_weight=0.0, customer_weight=0.0, sequence_weight=0.0, linear_weight=10.0
    )

    # when
    linear = build_behaviour(index_orders(orders, {item.id: i for i, item in enumerate(items)}), n=40).linear
    engine = Recommender.build(items, orders=orders, config=config)

    # then: each a's one linear link is its companion, and the engine puts it first, credited to the orders
    assert [linear.getrow(j).indices.tolist() for j in range(20)] == [[j + 20] for j in range(20)]
    firsts = [engine.recommend(query_id=f"i{j}", placement="product", limit=1)[0] for j in range(20)]
    assert [r.id for r in firsts] == [f"i{j + 20}" for j in range(20)]
    assert {r.reason for r in firsts} == {"bought_together"}


def test_hold_out_removes_each_customers_held_out_items_from_every_signal():
    # given
    index = {x: i for i, x in enumerate("abc")}
    orders = index_orders(
        [Order(customer="k1", when=1.0, items=("a", "b")), Order(customer="k1", when=2.0, items=("c",))], index
    )

    # when
    before = build_behaviour(hold_out_last_items(orders, {"k1": {2}}), n=3)

    # then: nothing of c remains
    assert before.popularity.tolist() == [1.0, 1.0, 0.0]
    for matrix in (before.basket, before.customer, before.sequence, before.linear):
        assert matrix.toarray()[:, 2].tolist() == [0.0, 0.0, 0.0]
        assert matrix.toarray()[2].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.django_db
def test_loader_links_one_customers_orders_by_key_and_not_guests():
    # given: a customer buys the lamp, then the bulb a week later; a guest buys the rug alone
    store = StoreFactory.create()
    for external_id, title in (("lamp", "Brass desk lamp"), ("bulb", "LED bulb E27"), ("rug", "Wool rug")):
        ProductFactory.create(store=store, external_id=external_id, title=title)
    key = customer_key(store_id=store.id, customer_id="4242")
    start = datetime(2024, 5, 1, tzinfo=UTC)
    for n, (product, when, who) in enumerate(
        (("lamp", start, key), ("bulb", start + timedelta(days=7), key), ("rug", start, ""))
    ):
        OrderLine.objects.create(
            store=store, order_id=f"o{n}", line_id="1", product_external_id=product, created_at=when, customer_key=who
        )

    # when
    orders = load_orders(store=store)
    engine = build_recommender_for_store(store=store, now=start + timedelta(days=8))

    # then
    assert sorted((o.customer == key, o.items) for o in orders) == [
        (False, ("rug",)),
        (True, ("bulb",)),
        (True, ("lamp",)),
    ]
    assert engine.recommend(query_id="lamp", placement="product", limit=1)[0].id == "bulb"


def test_evaluation_orders_hold_no_target_and_group_by_user_and_time():
    # given
    interactions = read_interactions(TINY)
    cases = build_cases(interactions)

    # when
    orders = training_orders(interactions, cases)

    # then: no (user, target) pair is in the store's history; one order per (user, timestamp)
    bought = {(o.user_id, item) for o in orders for item in o.items}
    assert not bought & {(c.user_id, c.target) for c in cases}
    assert len({(o.user_id, o.timestamp) for o in orders}) == len(orders)
    for case in cases:
        history = [item for o in orders if o.user_id == case.user_id for item in o.items]
        assert history == list(case.history)
    assert [o.timestamp for o in orders] == sorted(o.timestamp for o in orders)
    assert np.isfinite([o.timestamp for o in orders]).all()


def test_asymmetric_normalisation_gives_the_conditional_probability_and_cosine_at_one_half():
    # given: a in 4 orders, b in 2 of them and in 6 others, c once with a (every order of two items: weight 1/log2 3)
    index = {x: i for i, x in enumerate("abcd")}
    raw = [("a", "b"), ("a", "b"), ("a", "c"), ("a", "d")] + [("b", "d")] * 6
    orders = index_orders([Order(customer="", when=float(n), items=pair) for n, pair in enumerate(raw)], index)
    w = 1.0 / np.log2(3.0)

    # when
    cosine = build_behaviour(orders, n=4, alpha=0.5).basket.toarray()
    conditional = build_behaviour(orders, n=4, alpha=1.0).basket.toarray()

    # then: cosine c / sqrt(n_a n_b); alpha 1 gives c / n_a, the share of a's orders that hold b
    assert cosine[0, 1] == pytest.approx(2 * w / np.sqrt(4 * 8))
    assert cosine[0, 2] == pytest.approx(w / np.sqrt(4 * 1))
    assert conditional[0, 1] == pytest.approx(2 * w / 4)
    assert conditional[0, 2] == pytest.approx(w / 4)
    assert conditional[1, 0] == pytest.approx(2 * w / 8)  # directed: P(a | b) uses b's own count


def popular_companion_store(families: int = 12, buyers: int = 20, background: int = 300) -> list[Order]:
    """Each family j: buyers of q_j come back for p_j (3 in 5) or for an item nobody else buys (2 in 5); p_j is also a
    bought a lot on its own (earlier customers bought it with one of three bestsellers x_k, so popularity alone does not
    single it out). The right next item after q_j is p_j."""
    rng = random.Random(11)
    orders: list[Order] = []
    when = 0.0
    for j in range(families):
        for b in range(background):
            when += 60
            orders.append(Order(customer=f"bg{j}-{b}", when=when, items=(f"p{j}", f"x{rng.randrange(3)}")))
    rare = 0
    for j in range(families):
        for b in range(buyers):
            when += DAY
            if b % 5 < 3:
                companion = f"p{j}"
            else:
                companion, rare = f"r{rare}", rare + 1
            orders.append(Order(customer=f"q{j}-{b}", when=when, items=(f"q{j}",)))
            orders.append(Order(customer=f"q{j}-{b}", when=when + 3600, items=(companion,)))
    return orders


def test_tuning_picks_the_conditional_probability_when_the_right_companion_is_a_bestseller(monkeypatch):
    # given: opaque titles; after q_j shoppers most often buy the bestseller p_j, otherwise a one-off item
    orders = popular_companion_store()
    rng = random.Random(5)
    ids = sorted({x for o in orders for x in o.items})
    items = [CatalogItem(id=x, title=f"{rng.randrange(16**12):012x}") for x in ids]
    # The 240 most recent customers (the q_j buyers) and 360 others. The linear signal stays off, in the grid too: this
    # is about the co-occurrence signals' normalisation (the linear one has none), and raising its weight is another
    # way to a gain the search would then weigh against this one.
    config = EngineConfig(tune_max_cases=600, linear_weight=0.0)
    monkeypatch.delitem(TUNING_GRID, "linear_weight")
    untuned = dataclasses.replace(config, self_tune=False, copurchase_weight=0.0, customer_weight=1.0)

    # when
    engine = Recommender.build(items, orders=orders, config=config)
    cosine = Recommender.build(items, orders=orders, config=untuned)

    # then: the cosine puts a one-off companion (bought once, only after q_j) above the bestseller in every signal;
    # P(b | a) does not, and the store's own history shows it
    assert engine.tuning is not None
    assert engine.tuning.chosen["behaviour_alpha"] == 1.0
    assert engine.config.behaviour_alpha == 1.0
    assert [engine.recommend(query_id=f"q{j}", placement="product", limit=1)[0].id for j in range(12)] == [
        f"p{j}" for j in range(12)
    ]
    cosine_tops = [cosine.recommend(query_id=f"q{j}", placement="product", limit=1)[0].id for j in range(12)]
    assert [top == f"p{j}" for j, top in enumerate(cosine_tops)] == [False] * 12


def test_weak_order_evidence_does_not_outrank_a_strong_text_match_untuned():
    # given: the query's near-twin by title, and one guest order that put the query with an unrelated item once
    items = [
        CatalogItem(id="mug-red", title="Ceramic coffee mug red 350 ml"),
        CatalogItem(id="mug-blue", title="Ceramic coffee mug blue 350 ml"),
        CatalogItem(id="rake", title="Garden leaf rake steel"),
        CatalogItem(id="hose", title="Garden hose 25 m"),
        *opaque_catalog(30),
    ]
    orders = [Order(customer="", when=1.0, items=("mug-red", "rake", *(f"i{k}" for k in range(20))))]

    # when
    engine = Recommender.build(items, orders=orders, config=EngineConfig(self_tune=False))

    # then: a single co-purchase in a 22-item order is weak evidence (a small cosine), so the text match stays first
    assert [r.id for r in engine.recommend(query_id="mug-red", placement="product", limit=1)] == ["mug-blue"]


def test_tuning_keeps_the_defaults_when_what_one_half_of_the_customers_shows_does_not_hold_for_the_other():
    # given: opaque titles; customers 0, 1, 4, 5, 8, ... (one cross-fitting half) buy a_j then its fixed companion
    # b_j, the others buy a_j then a random item, never b_j
    items = opaque_catalog(40)
    rng = random.Random(4)
    orders = []
    for n in range(300):
        j = rng.randrange(20)
        second = j + 20 if (n // 2) % 2 == 0 else rng.choice([k for k in range(40) if k not in (j, j + 20)])
        orders.append(Order(customer=f"c{n}", when=n * DAY, items=(f"i{j}",)))
        orders.append(Order(customer=f"c{n}", when=n * DAY + 60, items=(f"i{second}",)))
    consistent = pair_orders(300, 20)

    # when
    engine = Recommender.build(items, orders=orders)
    learned = Recommender.build(items, orders=consistent)

    # then: what a search finds on one half does not hold on the other, so the default blend stays (the
    # normalisation is a separate, paired choice); where every customer shows the pairs, the search is confirmed
    assert engine.tuning is not None
    assert {f: getattr(engine.config, f) for f in TUNING_GRID} == {f: getattr(EngineConfig(), f) for f in TUNING_GRID}
    assert learned.tuning is not None
    assert learned.config != EngineConfig()
    assert learned.tuning.tuned_ndcg > learned.tuning.default_ndcg


def test_a_tuned_blend_replaces_the_defaults_only_beyond_two_standard_errors_of_the_paired_gain():
    current = np.zeros(100)
    noise = np.array([1.0, -1.0] * 50)  # standard error of the mean: sqrt(100 / 99) / 10 = 0.1005
    assert not significantly_better(current + noise + 0.15, current)  # 1.49 standard errors: noise
    assert not significantly_better(current + noise + 0.19, current)  # 1.89
    assert significantly_better(current + noise + 0.21, current)  # 2.09
    assert not significantly_better(current + noise - 0.5, current)  # a loss never replaces
    assert not significantly_better(current, current)  # no gain at all


def test_a_validation_case_counts_only_when_servings_pool_holds_its_target():
    # given: item 0's stored text neighbours are 1 and 2; it was bought with 3; 4 is a bestseller
    from scipy import sparse

    from recommendations.engine.tuning import _in_serving_pool

    neighbour_ids = np.array([[1, 2], [0, 2], [0, 1], [4, 5], [3, 5], [3, 4]], dtype=np.int32)
    bought_with = sparse.csr_matrix(([1.0], ([0], [3])), shape=(6, 6))
    history = np.array([0])

    # when
    reachable = {
        target: _in_serving_pool(
            target, history, neighbour_ids=neighbour_ids, behaviour=[bought_with], fixed=np.array([4])
        )
        for target in range(1, 6)
    }

    # then: 5 is nobody's neighbour of 0, never bought with it and no bestseller: serving cannot show it
    assert reachable == {1: True, 2: True, 3: True, 4: True, 5: False}
