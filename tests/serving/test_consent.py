"""Consent to personalisation as the request path sees it: one query per poll, not per user."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event

from shopflow.ingest.schema import Consent, User
from shopflow.serving.consent import ConsentView
from shopflow.store.store import Store


def _user(user_id: str, personal: bool) -> User:
    return User(user_id=user_id, consent=Consent(personalization=personal, tracking=True))


def _count_queries(store: Store) -> list[str]:
    seen: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _on(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    return seen


def test_many_users_cost_one_query_per_poll(store: Store) -> None:
    store.users.upsert(_user("no", personal=False))
    store.users.upsert(_user("yes", personal=True))
    consent = ConsentView(store, seconds=3600)
    queries = _count_queries(store)
    answers = {u: consent.personal(u) for u in ["no", "yes", *(f"new-{i}" for i in range(500))]}
    assert answers["no"] is False and answers["yes"] is True
    assert all(answers[f"new-{i}"] for i in range(500))  # no record: consent by default
    assert len(queries) == 1 and consent.polls == 1


def test_a_change_written_elsewhere_is_seen_at_the_next_poll(store: Store) -> None:
    consent = ConsentView(store, seconds=3600)
    assert consent.personal("u1")
    store.users.upsert(_user("u1", personal=False))  # another worker's write
    assert consent.personal("u1")  # not polled yet: the old answer, within `seconds`
    consent.refresh()  # not due yet: nothing read
    assert consent.personal("u1")
    consent._due = 0.0  # the poll is due
    assert not consent.personal("u1")
    store.users.upsert(_user("u1", personal=True))
    consent._due = 0.0
    assert consent.personal("u1")


def test_a_change_made_here_takes_effect_at_once(store: Store) -> None:
    consent = ConsentView(store, seconds=3600)
    assert consent.personal("u2")
    store.users.upsert(_user("u2", personal=False))
    consent.forget("u2")
    assert not consent.personal("u2")
    store.users.delete("u2")  # erased: no record, the default again
    consent.forget("u2")
    assert consent.personal("u2")


def test_a_write_stamped_slightly_in_the_past_is_not_missed(store: Store) -> None:
    consent = ConsentView(store, seconds=3600)
    assert consent.personal("late")
    # a worker whose clock runs two seconds behind writes after this poll
    behind = int((datetime.now(UTC).timestamp() - 2) * 1e6)
    store.users.upsert(_user("late", personal=False))
    from sqlalchemy import update

    from shopflow.store.db import users

    with store.engine.begin() as conn:
        conn.execute(update(users).where(users.c.user_id == "late").values(updated_at=behind))
    consent._due = 0.0
    assert not consent.personal("late")
