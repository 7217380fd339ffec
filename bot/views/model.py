"""The read model: one snapshot of every owner's accounts and totals, for every view.

`build_read_model(view)` builds it from a `bot.balances.view.StateView`: the configuration and the
current states only (no read is ever started, nothing waits). The terminal table and its JSON
(`bot.views.report`), ``/api/users`` and the dashboard (`web.payloads`), the metrics totals
(`bot.views.metrics`) and the guide's summary (`user_balance_summary`) all format this one
model, so they agree on every total, mark, average and count.

The rule for totals (one rule, everywhere):

- Owners: the master (when configured) and each enabled user, in configuration order; each with
  its enabled accounts, in configuration order. A configured account without a state yet is
  ``pending`` (value unknown).
- An owner's ``total`` is the sum of its accounts' known values (a stale account counts with its
  last good value). It is None when it has accounts and none of them has a known value, and 0
  for an owner without any enabled account (it holds nothing here).
- ``partial`` is True when the total may miss something: some account of the owner is not
  ``ok`` (stale, error, not_configured, pending), or has an unknown value, or holds an asset
  that could not be priced. An unknown total is partial too; the views mark only known ones.
- Summary over the users: ``user_count`` enabled users; ``total_user_capital`` the sum of the
  known user totals (0 for zero users, None when there are users and no total is known);
  ``average_per_user`` that capital divided by ``users_counted``, the number of users whose
  total is known (0 for zero users, None when no total is known); ``partial`` when any user's
  total is partial or unknown.
- ``ranked``: users by total, highest first, unknown totals last, ties by user id.

Sums run in `bot.core.money.MONEY`; values stay exact `Decimal` until a view rounds them.
"""
from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from operator import attrgetter
from typing import Iterator, Mapping, NamedTuple

from bot.config import MASTER_OWNER, AccountConfig, Config
from bot.core.money import MONEY, quantize, sum_money
from bot.core.state import AccountState, Status

PENDING = "pending"  # a configured account without a state yet
ZERO = Decimal(0)


class AccountLine(NamedTuple):
    """One configured account and its current state (None while ``pending``). A named tuple:
    immutable, and cheap to make for thousands of accounts at every scrape."""

    account: AccountConfig
    state: AccountState | None

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def owner(self) -> str:
        return self.account.owner

    @property
    def broker(self) -> str:
        return self.account.broker.name

    @property
    def exchange(self) -> str:
        return self.account.broker.exchange

    @property
    def status(self) -> str:
        """ok, stale, error, not_configured or pending."""
        return PENDING if self.state is None else self.state.status.value

    @property
    def value(self) -> Decimal | None:
        return None if self.state is None else self.state.value


class OwnerTotal(NamedTuple):
    """The master or one user: its enabled accounts with their states (None: pending), its total
    and whether that total is partial. A named tuple, cheap to make at every scrape."""

    owner: str          # "master" or the user id
    name: str
    configs: tuple[AccountConfig, ...]
    states: tuple[AccountState | None, ...]  # one per config
    total: Decimal | None
    partial: bool

    @property
    def accounts(self) -> tuple[AccountLine, ...]:
        """The account lines, in configuration order."""
        return tuple(map(AccountLine, self.configs, self.states))


@dataclass(frozen=True, slots=True)
class Summary:
    user_count: int
    total_user_capital: Decimal | None
    users_counted: int
    average_per_user: Decimal | None
    partial: bool


_OK = Status.OK
_add = MONEY.add
_new_tuple = tuple.__new__  # builds an OwnerTotal without the named-tuple constructor's argument binding


def owner_total(owner: str, name: str, configs: tuple[AccountConfig, ...],
                states: tuple[AccountState | None, ...]) -> OwnerTotal:
    """The total of ``states`` under the rule of the module docstring (one pass: it runs for every
    owner at every scrape)."""
    total, complete = (None, True) if states else (ZERO, True)
    for state in states:
        value = None if state is None else state.value
        if value is None:
            complete = False
        else:
            total = value if total is None else _add(total, value)
            if complete and (state.status is not _OK or state.unpriced):
                complete = False
    return _new_tuple(OwnerTotal, (owner, name, configs, states, total, total is None or not complete))


def summarize(users: tuple[OwnerTotal, ...] | list[OwnerTotal]) -> Summary:
    """The summary of ``users`` under the rule of the module docstring."""
    known = [u.total for u in users if u.total is not None]
    partial = any(u.partial for u in users)
    if not users:
        return Summary(0, ZERO, 0, ZERO, False)
    if not known:
        return Summary(len(users), None, 0, None, partial)
    capital = sum_money(known)
    return Summary(len(users), capital, len(known), MONEY.divide(capital, len(known)), partial)


_by_owner, _by_total = attrgetter("owner"), attrgetter("total")


@dataclass(frozen=True)
class ReadModel:
    """Every owner at ``generated_at`` (Unix time). ``users`` are in configuration order."""

    generated_at: float
    base_currency: str
    timezone: str
    master: OwnerTotal | None
    users: tuple[OwnerTotal, ...]
    summary: Summary

    @cached_property
    def ranked(self) -> tuple[OwnerTotal, ...]:
        """The users by total, highest first; unknown totals last; ties by user id (computed on
        first use; two threads racing compute the same tuple). Two sorts with C key functions:
        by owner, then the known totals by total descending (stable, so ties keep owner order)."""
        by_owner = sorted(self.users, key=_by_owner)
        known = [u for u in by_owner if u.total is not None]
        known.sort(key=_by_total, reverse=True)  # reverse keeps equal totals in their order
        return (*known, *(u for u in by_owner if u.total is None))

    def only(self, user_id: str | None) -> ReadModel:
        """The model as one user sees it: that user (none if ``user_id`` is not an enabled user),
        no master, the summary over that user alone."""
        users = tuple(u for u in self.users if u.owner == user_id)
        return ReadModel(self.generated_at, self.base_currency, self.timezone, None, users, summarize(users))

    @property
    def owners(self) -> tuple[OwnerTotal, ...]:
        return ((self.master,) if self.master is not None else ()) + self.users

    def lines(self) -> Iterator[AccountLine]:
        """Every account line, the master's first, in configuration order."""
        for owner in self.owners:
            yield from owner.accounts

    @property
    def states(self) -> tuple[AccountState, ...]:
        """The states of the accounts that have one (pending ones left out)."""
        return tuple(state for owner in self.owners for state in owner.states if state is not None)

    @property
    def all_fresh(self) -> bool:
        return all(state is not None and state.status is Status.OK for owner in self.owners for state in owner.states)

    # figures under the report's historical names (the manager's log line uses them)
    @property
    def master_total(self) -> Decimal | None:
        return None if self.master is None else self.master.total

    @property
    def user_count(self) -> int:
        return self.summary.user_count

    @property
    def total_user_capital(self) -> Decimal | None:
        return self.summary.total_user_capital


# --------------------------------------------------------------------------- building

_Owner = tuple[str, str, tuple[str, ...], tuple[AccountConfig, ...]]  # (owner, name, account ids, accounts)

# _layouts: id(config) -> (weak reference to it, master, users). Guarded by _layouts_lock, except
# the weak reference's callback, which drops its entry with one atomic dict.pop and takes no lock
# (the garbage collector may run it on a thread that holds the lock).
_layouts_lock = threading.Lock()
_layouts: dict[int, tuple[weakref.ref, _Owner | None, tuple[_Owner, ...]]] = {}


def _layout(config: Config) -> tuple[_Owner | None, tuple[_Owner, ...]]:
    """The master and the enabled users of ``config`` with their enabled accounts, made once per
    configuration object (a configuration is immutable) and dropped with it."""
    key = id(config)
    with _layouts_lock:
        entry = _layouts.get(key)
    if entry is not None and entry[0]() is config:
        return entry[1], entry[2]

    def owner(owner_id: str, name: str, brokers) -> _Owner:
        accounts = tuple(AccountConfig(owner_id, b) for b in brokers if b.enabled)
        return owner_id, name, tuple(a.account_id for a in accounts), accounts

    master = None if config.master is None else owner(MASTER_OWNER, config.master.name, config.master.brokers)
    users = tuple(owner(u.user_id, u.name, u.brokers) for u in config.enabled_users())
    ref = weakref.ref(config, lambda _, key=key: _layouts.pop(key, None))
    with _layouts_lock:
        _layouts[key] = (ref, master, users)
    return master, users


def owner_layout(config: Config) -> tuple[_Owner | None, tuple[_Owner, ...]]:
    """The master (None if not configured) and the enabled users of ``config``, each as
    (owner id, name, enabled account ids, their `AccountConfig`), in configuration order; made
    once per configuration object (for indexes kept by owner, e.g. `bot.app.summaries`)."""
    return _layout(config)


def build_model(config: Config, states: Mapping[str, AccountState], now: float | None = None,
                user_id: str | None = None) -> ReadModel:
    """The model of ``states`` (account id → state) under ``config``; with ``user_id``, that
    enabled user only and no master (KeyError for an unknown or disabled user)."""
    settings = config.settings
    get = states.get
    master_layout, users_layout = _layout(config)
    if user_id is not None:
        users_layout = tuple(u for u in users_layout if u[0] == user_id)
        if not users_layout:
            raise KeyError(f"unknown or disabled user {user_id!r}")
    master = None
    if user_id is None and master_layout is not None:
        owner_id, name, ids, configs = master_layout
        master = owner_total(owner_id, name, configs, tuple(map(get, ids)))
    users = tuple([owner_total(owner_id, name, configs, tuple(map(get, ids)))
                   for owner_id, name, ids, configs in users_layout])
    return ReadModel(time.time() if now is None else now, settings.base_currency, settings.timezone, master, users,
                     summarize(users))


def build_read_model(view, now: float | None = None, user_id: str | None = None) -> ReadModel:
    """The model of a `StateView`'s current states (``view.config``, ``view.current_states()``; no read)."""
    return build_model(view.config, {s.account_id: s for s in view.current_states()}, now, user_id)


def user_balance_summary(model: ReadModel, brokers: Mapping[str, Mapping[str, Decimal | None]] | None = None) -> dict:
    """The seed guide's ``get_user_balance_summary()`` dict: ``user_count``, ``total_capital``,
    ``average_balance`` (rounded to the base currency's places), ``users`` ranked (highest total
    first), each ``{user_id, total, brokers: {broker: value}}``; plus ``users_counted`` and
    ``partial`` (and ``partial`` per user). Values are `Decimal`, None where unknown.
    ``brokers``: owner -> {broker: value} of the model's states when the caller keeps it already
    (copied, not rebuilt from the account lines)."""
    s = model.summary
    average = s.average_per_user
    if brokers is None:
        users = [{"user_id": u.owner, "total": u.total, "brokers": {a.broker: a.value for a in u.accounts},
                  "partial": u.partial} for u in model.ranked]
    else:
        users = [{"user_id": u.owner, "total": u.total, "brokers": dict(brokers[u.owner]), "partial": u.partial}
                 for u in model.ranked]
    return {
        "user_count": s.user_count,
        "total_capital": s.total_user_capital,
        "average_balance": None if average is None else quantize(average, model.base_currency),
        "users_counted": s.users_counted,
        "partial": s.partial,
        "users": users,
    }
