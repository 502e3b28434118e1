"""Wrong passwords lock one client address out of one account, with a lock that doubles; many
addresses failing at once slow an account down but never lock its user out (auth/lockout.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from app import create_app
from auth.service import create_user
from core.clock import ManualClock
from core.i18n import t
from store.stores import Stores

pytestmark = pytest.mark.also_on_cluster  # the counters are Redis scripts: one slot per account on a cluster

ORIGIN = {"Origin": "http://localhost"}
USER = "duty.officer"
PASSWORD = "right-password-2026"
MINUTE = 60_000
T0 = 1_790_000_000_000


class Browser:
    """A login page in a browser at one client address."""

    def __init__(self, app: Any, address: str) -> None:
        self.client = app.server.test_client()
        self.address = address

    def login(self, password: str, username: str = USER) -> Any:
        return self.client.post(
            "/login",
            data={"username": username, "password": password},
            headers=ORIGIN,
            environ_base={"REMOTE_ADDR": self.address},
        )

    def fail(self, times: int) -> Any:
        """Type a wrong password several times; the last answer."""
        for _ in range(times):
            answer = self.login("wrong-password-1")
        return answer


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def app_for(stores: Stores, clock: ManualClock, **settings: Any) -> Any:
    changed = replace(stores, settings=stores.settings.model_copy(update=settings)) if settings else stores
    with changed.sessions.begin() as session:
        create_user(session, USER, PASSWORD, "police")
    return create_app(changed, clock=clock)


def signed_in(answer: Any) -> bool:
    return bool(answer.status_code == 302 and "st_session=" in answer.headers.get("Set-Cookie", ""))


def test_wrong_passwords_from_one_address_do_not_lock_the_user_out_from_another(
    stores: Stores, clock: ManualClock
) -> None:
    app = app_for(stores, clock)
    attacker, officer = Browser(app, "203.0.113.9"), Browser(app, "10.1.2.3")
    locked = attacker.fail(stores.settings.login_max_failures)
    assert locked.status_code == 401 and t("login.locked", "zh") in locked.get_data(as_text=True)
    assert signed_in(officer.login(PASSWORD))


def test_the_address_that_failed_is_locked_out_even_with_the_right_password(stores: Stores, clock: ManualClock) -> None:
    app = app_for(stores, clock)
    browser = Browser(app, "10.1.2.3")
    browser.fail(stores.settings.login_max_failures - 1)
    clock.advance(MINUTE)
    browser.fail(1)
    refused = browser.login(PASSWORD)
    assert refused.status_code == 401 and t("login.locked", "zh") in refused.get_data(as_text=True)
    lock_minutes = stores.settings.login_lockout_minutes
    assert refused.headers["Retry-After"] == str(lock_minutes * 60)
    clock.advance(lock_minutes * MINUTE - 1000)
    assert browser.login(PASSWORD).status_code == 401
    clock.advance(1000)
    assert signed_in(browser.login(PASSWORD))


def test_each_further_lock_of_the_address_lasts_twice_as_long_and_a_login_starts_over(
    stores: Stores, clock: ManualClock
) -> None:
    app = app_for(stores, clock)
    browser = Browser(app, "10.1.2.3")
    failures, first = stores.settings.login_max_failures, stores.settings.login_lockout_minutes
    for minutes in (first, 2 * first, 4 * first):
        browser.fail(failures)
        refused = browser.login(PASSWORD)
        assert refused.status_code == 401 and refused.headers["Retry-After"] == str(minutes * 60)
        clock.advance(minutes * MINUTE)
    assert signed_in(browser.login(PASSWORD))
    browser.fail(failures)
    assert browser.login(PASSWORD).headers["Retry-After"] == str(first * 60)


def test_a_lock_never_lasts_longer_than_the_longest(stores: Stores, clock: ManualClock) -> None:
    app = app_for(stores, clock, login_lockout_minutes=15, login_lockout_max_minutes=40)
    browser = Browser(app, "10.1.2.3")
    for minutes in (15, 30, 40, 40):
        browser.fail(stores.settings.login_max_failures)
        assert browser.login(PASSWORD).headers["Retry-After"] == str(minutes * 60)
        clock.advance(minutes * MINUTE)


def test_failures_from_many_addresses_slow_the_account_down_but_never_lock_it(
    stores: Stores, clock: ManualClock
) -> None:
    app = app_for(stores, clock, login_account_max_failures=12, login_account_delay_seconds=5)
    # twelve addresses, one wrong password each (none of them near its own lock)
    for i in range(12):
        Browser(app, f"198.51.100.{i}").fail(1)
    officer = Browser(app, "10.1.2.3")
    slowed = officer.login(PASSWORD)
    assert slowed.status_code == 429 and slowed.headers["Retry-After"] == "5"
    assert t("login.slowed", "zh", s=5) in slowed.get_data(as_text=True)
    # the attackers keep trying; each address waits for itself and cannot take the officer's turn
    for i in range(12):
        assert Browser(app, f"198.51.100.{i}").fail(1).status_code == 429
    clock.advance(5000)
    for i in range(12):
        Browser(app, f"198.51.100.{i}").fail(1)
    assert signed_in(officer.login(PASSWORD))
