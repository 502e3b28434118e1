"""Wrong passwords: a lock per (account, client address) with exponential backoff, and a slow-down,
never a lock, of an account that fails from many addresses at once.

A lock keyed by the account alone would let anyone lock anyone out by typing wrong passwords. Here
``SANDTABLE_LOGIN_MAX_FAILURES`` failures from one address lock that address out of that account
for ``SANDTABLE_LOGIN_LOCKOUT_MINUTES``; each further lock of the pair doubles, up to
``SANDTABLE_LOGIN_LOCKOUT_MAX_MINUTES``. The right password from another address still gets in.
When an account collects ``SANDTABLE_LOGIN_ACCOUNT_MAX_FAILURES`` failures from all addresses in
one window, every further attempt on it, from each address, must first wait
``SANDTABLE_LOGIN_ACCOUNT_DELAY_SECONDS`` (a 429 with Retry-After): a distributed guess slows down,
the user still gets in after the wait. Each address waits for itself, so an attacker's attempts
never use up the user's turn. A successful login clears that address's failures and locks.

Unknown usernames count like known ones (nothing tells them apart). State lives in Redis (shared
by every web worker; keys in store/keys.py); times come from the clock, so tests move time by hand.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from core.clock import Clock
from core.errors import SandtableError
from core.settings import Settings
from store.keys import Keys
from store.redis_server import RedisClient

MINUTE_MS = 60_000
WAIT_GRACE_MS = 60_000  # a turn not used within a minute of its time is gone: wait again

# KEYS: the pair's hash, the account's window counter, the pair's wait
# ARGV: now, account ceiling, delay (ms), wait TTL (ms)
# → {0, 0} try the password; {1, ms} the pair is locked for ms; {2, ms} the account is slowed: wait ms
CHECK_LUA = """
local now = tonumber(ARGV[1])
local locked_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if locked_until > now then
  return {1, locked_until - now}
end
if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[2]) then
  return {0, 0}
end
local turn = redis.call('GET', KEYS[3])
if not turn then
  redis.call('SET', KEYS[3], now + tonumber(ARGV[3]), 'PX', tonumber(ARGV[3]) + tonumber(ARGV[4]))
  return {2, tonumber(ARGV[3])}
end
if tonumber(turn) > now then
  return {2, tonumber(turn) - now}
end
redis.call('DEL', KEYS[3])
return {0, 0}
"""

# KEYS: the pair's hash, the account's window counter
# ARGV: now, failures before a lock, how long to remember (ms), window TTL (ms), lock 1, lock 2, … (ms)
# → the end (ms) of the lock this failure started, or 0
FAILED_LUA = """
local now = tonumber(ARGV[1])
local locked_until = 0
if redis.call('HINCRBY', KEYS[1], 'n', 1) >= tonumber(ARGV[2]) then
  local locks = redis.call('HINCRBY', KEYS[1], 'locks', 1)
  locked_until = now + tonumber(ARGV[4 + math.min(locks, #ARGV - 4)])
  redis.call('HSET', KEYS[1], 'n', 0)
  redis.call('HSET', KEYS[1], 'until', locked_until)
end
redis.call('PEXPIRE', KEYS[1], math.max(locked_until - now, 0) + tonumber(ARGV[3]))
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return locked_until
"""


class LoginRefused(SandtableError):
    """The password is not even checked: the address is locked out, or the account is slowed down."""

    def __init__(self, reason: str, retry_after_ms: int) -> None:
        super().__init__(f"login {reason}; retry after {retry_after_ms} ms")
        self.reason = reason
        self.retry_after_s = max(1, -(-retry_after_ms // 1000))


class AddressLocked(LoginRefused):
    """Too many wrong passwords for this account from this address."""

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__("locked", retry_after_ms)


class AccountSlowed(LoginRefused):
    """The account fails from many addresses: this address must wait before its next attempt."""

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__("slowed", retry_after_ms)


def lock_schedule_ms(first_minutes: int, max_minutes: int) -> list[int]:
    """How long the 1st, 2nd, … lock of a pair lasts: the first doubling up to the cap (the last
    entry repeats for every further lock)."""
    schedule = [min(first_minutes, max_minutes) * MINUTE_MS]
    while schedule[-1] < max_minutes * MINUTE_MS:
        schedule.append(min(schedule[-1] * 2, max_minutes * MINUTE_MS))
    return schedule


def account_digest(username: str) -> str:
    """The account's part of the key names (a digest: any text may be typed as a username)."""
    return hashlib.sha256(username.strip().encode()).hexdigest()[:24]


@dataclass
class LoginGuard:
    """Counts wrong passwords per account and address; decides whether a login may be tried."""

    client: RedisClient
    keys: Keys
    settings: Settings
    clock: Clock

    def __post_init__(self) -> None:
        self._check = self.client.register_script(CHECK_LUA)
        self._failed = self.client.register_script(FAILED_LUA)

    def _window(self, now: int) -> int:
        return now // (self.settings.login_account_window_minutes * MINUTE_MS)

    def check(self, username: str, address: str) -> None:
        """Before the password is checked: AddressLocked or AccountSlowed when it may not be tried."""
        account, now = account_digest(username), self.clock.now_ms()
        keys = [
            self.keys.login_address(account, address),
            self.keys.login_account(account, self._window(now)),
            self.keys.login_wait(account, address),
        ]
        delay_ms = self.settings.login_account_delay_seconds * 1000
        verdict, wait_ms = self._check(
            keys=keys, args=[now, self.settings.login_account_max_failures, delay_ms, WAIT_GRACE_MS]
        )
        if int(verdict) == 1:
            raise AddressLocked(int(wait_ms))
        if int(verdict) == 2:
            raise AccountSlowed(int(wait_ms))

    def failed(self, username: str, address: str) -> bool:
        """Count a wrong password; True when it locked the address out of the account."""
        account, now = account_digest(username), self.clock.now_ms()
        settings = self.settings
        schedule = lock_schedule_ms(settings.login_lockout_minutes, settings.login_lockout_max_minutes)
        locked_until = self._failed(
            keys=[self.keys.login_address(account, address), self.keys.login_account(account, self._window(now))],
            args=[
                now,
                settings.login_max_failures,
                settings.login_lockout_max_minutes * MINUTE_MS,
                2 * settings.login_account_window_minutes * MINUTE_MS,
                *schedule,
            ],
        )
        return int(locked_until) > 0

    def succeeded(self, username: str, address: str) -> None:
        """The right password: this address's failures and locks of the account are forgotten."""
        account = account_digest(username)
        self.client.delete(self.keys.login_address(account, address), self.keys.login_wait(account, address))
