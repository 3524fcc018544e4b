"""Who may get personal recommendations: the users without consent, kept in memory.

Every recommendation checks the user's consent to personalisation first. Reading the user's record
for each request (or each new user) puts a database query on the request path; instead
:class:`ConsentView` keeps the set of users who withheld consent, loaded with one query at the
start and brought up to date with one query per ``seconds`` for the records written since (by any
worker or process sharing the database). A user without a record consents by default, as in
:meth:`~shopflow.store.catalog.UserStore.get`.

A change made through this worker's API (:meth:`ConsentView.forget`, called by the service) takes
effect at once; one made elsewhere within ``seconds``. Records are matched by their ``updated_at``
with a margin of :data:`CLOCK_MARGIN_US` before the last poll, so a write committed late or by a
machine whose clock runs a little behind is still seen. An erased user's record is gone: this
worker reads it again at once; another worker keeps treating the user as not consenting until it
restarts, which errs on the side of privacy.

Example
-------
>>> consent = ConsentView(store, seconds=30.0)          # doctest: +SKIP
>>> consent.personal("u-42")                             # doctest: +SKIP
True
"""

from __future__ import annotations

import logging
import threading
import time

from shopflow.store.db import now_micros
from shopflow.store.store import Store

log = logging.getLogger(__name__)

CLOCK_MARGIN_US = 5_000_000  # records written up to 5 s before the last poll are read again


class ConsentView:
    """The users without consent to personalisation, refreshed every ``seconds``."""

    def __init__(self, store: Store, seconds: float = 30.0) -> None:
        self.store = store
        self.seconds = seconds
        self._withheld: set[str] = set()
        self._since: int | None = None  # µs: the next poll reads records written from here on
        self._due = 0.0  # monotonic time of the next poll
        self._lock = threading.Lock()
        self.polls = 0

    def personal(self, user_id: str) -> bool:
        """Whether ``user_id`` consents to personalisation (no record: yes)."""
        if time.monotonic() >= self._due:
            self.refresh()
        return user_id not in self._withheld

    def refresh(self) -> None:
        """Read the records written since the last poll (all withheld consents the first time)."""
        with self._lock:
            if time.monotonic() < self._due:  # another thread has just polled
                return
            started = now_micros()
            changes = self.store.users.consent_changes(self._since)
            for user_id, consents in changes:
                if consents:
                    self._withheld.discard(user_id)
                else:
                    self._withheld.add(user_id)
            self._since = started - CLOCK_MARGIN_US
            self._due = time.monotonic() + self.seconds
            self.polls += 1
        log.debug("consent refreshed", extra={"changed": len(changes)})

    def forget(self, user_id: str) -> None:
        """Read ``user_id``'s record again now (it was just written or erased here)."""
        user = self.store.users.get(user_id)
        with self._lock:
            if user is None or user.consent.personalization:
                self._withheld.discard(user_id)
            else:
                self._withheld.add(user_id)
