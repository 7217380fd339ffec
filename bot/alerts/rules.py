"""The alert rules: account states in, notifications (`AlertEvent`) out. No I/O, no threads.

`AlertEngine.observe(state, now)` is called once per read (the monitoring worker does it, in the
order of the reads). It evaluates, for the account and — after a successful read of an owner
with two accounts or more — for the owner's total:

BALANCE_LOW    fires when value < low_balance; resolves when value > low_balance × (1 + h).
BALANCE_DROP   fires when value <= peak × (1 − drop_percent) (and below the peak), the peak
               being the highest value read within the last drop_window_minutes (the history's
               snapshots count as reads: `seed`); resolves when value > that level × (1 + h),
               which also happens once the old high has left the window.
ACCOUNT_ERROR  (accounts only) fires after error_reads consecutive failed reads, or when a failed
               read finds the last good read older than stale_minutes; resolves at the next
               successful read.

An unknown value (None) never fires or resolves LOW or DROP. A user's total is unknown while
any of its readable accounts has no known value (a stale account counts with its last good
value; a not-configured one is left out). An owner with one account has no separate total (it
would repeat the account's alerts). A condition fires once, repeats at most once per
cooldown_minutes while it holds, and sends "resolved" when it clears; between "holds" and
"clears" (the hysteresis band) nothing changes. A rule switched off resolves its open alerts.

Not thread-safe: one thread owns an engine (see `bot.alerts.system`).
"""
from __future__ import annotations

import datetime as dt
from collections import deque
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

from bot.core.state import AccountState, Status
from bot.alerts.model import FIRING, LEVELS, RESOLVED, AlertEvent, AlertType, money
from bot.config.alerts import HUNDRED, AlertSettings, RuleSettings

LOW, DROP, ERROR = AlertType.BALANCE_LOW, AlertType.BALANCE_DROP, AlertType.ACCOUNT_ERROR


class PeakWindow:
    """The highest value added within a sliding time window (a monotonic deque: amortised O(1))."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: deque[tuple[float, Decimal]] = deque()

    def add(self, at: float, value: Decimal) -> None:
        entries = self._entries
        while entries and entries[-1][1] <= value:
            entries.pop()
        entries.append((at, value))

    def peak(self, now: float, seconds: float) -> Decimal | None:
        """The highest value added at or after ``now - seconds`` (None if none)."""
        entries, start = self._entries, now - seconds
        while entries and entries[0][0] < start:
            entries.popleft()
        return entries[0][1] if entries else None


class _Subject:
    """What the engine remembers of one account or one total."""

    __slots__ = ("value", "failures", "window")

    def __init__(self) -> None:
        self.value: Decimal | None = None
        self.failures = 0
        self.window: PeakWindow | None = None


class _Open:
    __slots__ = ("started_at", "last_sent")

    def __init__(self, started_at: float, last_sent: float) -> None:
        self.started_at, self.last_sent = started_at, last_sent


def _subject_name(owner: str, broker: str | None) -> str:
    return f"{owner} {broker}" if broker is not None else f"{owner} total"


class AlertEngine:
    def __init__(self, settings: AlertSettings, owners: Mapping[str, Sequence[str]], base_currency: str):
        """``owners``: owner → ids of its readable accounts (not-configured ones left out)."""
        self._settings = settings
        self._base = base_currency
        self._owners = {owner: tuple(ids) for owner, ids in owners.items()}
        self._accounts: dict[str, _Subject] = {}
        self._totals: dict[str, _Subject] = {owner: _Subject() for owner, ids in self._owners.items() if len(ids) > 1}
        self._open: dict[tuple, _Open] = {}
        self._exchanges: dict[tuple[str, str], str] = {}  # (owner, broker) -> exchange id, from the reads seen

    # ------------------------------------------------------------------ state across restarts

    def restore(self, open_alerts: Iterable[tuple]) -> int:
        """Reopen the alerts still firing in the log (`BalanceStore.open_alerts` rows): their
        repeats keep the cooldown, and they resolve when their condition clears."""
        known = {t.value: t for t in AlertType}
        count = 0
        for alert, began in open_alerts:
            if alert.type in known:
                key = (known[alert.type], alert.user_id, alert.broker)
                self._open[key] = _Open(began.timestamp(), alert.created_at.timestamp())
                count += 1
        return count

    def seed(self, history: Mapping[str, Sequence[tuple[dt.datetime, Decimal]]], now: float) -> None:
        """Fill the drop windows from snapshots (`BalanceStore.balances_since`): per account,
        (captured_at, balance) oldest first, the first one possibly from before the window."""
        for owner, ids in self._owners.items():
            rules = self._settings.rules_for(owner)
            if rules.drop_factor is None:
                continue
            start = now - rules.drop_window_seconds
            timelines = {}
            for account_id in ids:
                rows = [(at.timestamp(), balance) for at, balance in history.get(account_id, ())]
                timelines[account_id] = rows
                self._fill(self._account(account_id), rows, start)
            if owner in self._totals:
                self._fill(self._totals[owner], self._total_timeline(timelines), start)

    @staticmethod
    def _fill(subject: _Subject, rows: list[tuple[float, Decimal]], start: float) -> None:
        opening = [i for i, (at, _) in enumerate(rows) if at <= start]
        rows = rows[opening[-1]:] if opening else rows
        if not rows:
            return
        subject.window = subject.window or PeakWindow()
        for at, value in rows:
            subject.window.add(max(at, start), value)

    @staticmethod
    def _total_timeline(timelines: Mapping[str, list[tuple[float, Decimal]]]) -> list[tuple[float, Decimal]]:
        """The owner's total after each snapshot of any of its accounts, once all are known."""
        events = sorted((at, account_id, value) for account_id, rows in timelines.items() for at, value in rows)
        current: dict[str, Decimal] = {}
        out = []
        for at, account_id, value in events:
            current[account_id] = value
            if len(current) == len(timelines):
                out.append((at, sum(current.values(), Decimal(0))))
        return out

    # ------------------------------------------------------------------ evaluation

    def _account(self, account_id: str) -> _Subject:
        subject = self._accounts.get(account_id)
        if subject is None:
            subject = self._accounts[account_id] = _Subject()
        return subject

    def open_keys(self) -> set[tuple]:
        return set(self._open)

    def observe(self, state: AccountState, now: float) -> list[AlertEvent]:
        """The notifications this read causes (usually none)."""
        if state.status is Status.NOT_CONFIGURED:
            return []
        events: list[AlertEvent] = []
        owner, broker = state.owner, state.broker
        self._exchanges[(owner, broker)] = state.exchange
        rules = self._settings.rules_for(owner)
        subject = self._account(state.account_id)
        subject.value = state.value
        if state.status is Status.OK:
            subject.failures = 0
            if (ERROR, owner, broker) in self._open:
                self._step(events, ERROR, owner, broker, rules, False, True, state.value, None, now,
                           f"{_subject_name(owner, broker)}: read successfully again")
            if state.value is not None:
                self._balance(events, rules, owner, broker, subject, state.value, now)
                total = self._totals.get(owner)
                if total is not None:
                    total.value = self._total_value(owner)
                    if total.value is not None:
                        self._balance(events, rules, owner, None, total, total.value, now)
        else:
            subject.failures += 1
            self._account_error(events, rules, state, subject, now)
        return events

    def _total_value(self, owner: str) -> Decimal | None:
        total = Decimal(0)
        accounts = self._accounts
        for account_id in self._owners[owner]:
            subject = accounts.get(account_id)
            if subject is None or subject.value is None:
                return None
            total += subject.value
        return total

    def _balance(self, events, rules: RuleSettings, owner, broker, subject: _Subject, value: Decimal, now) -> None:
        low = rules.low_balance
        if low is not None:
            holds, clears = value < low, value > rules.low_resolve
            if holds or (LOW, owner, broker) in self._open:
                verb = "is below" if holds else "is back above"
                self._step(events, LOW, owner, broker, rules, holds, clears, value, low, now,
                           f"{_subject_name(owner, broker)} balance {money(value)} {self._base} {verb} "
                           f"{money(low)} {self._base}")
        elif (LOW, owner, broker) in self._open:
            self._step(events, LOW, owner, broker, rules, False, True, value, None, now,
                       f"{_subject_name(owner, broker)}: BALANCE_LOW rule switched off")
        factor = rules.drop_factor
        if factor is None:
            if (DROP, owner, broker) in self._open:
                self._step(events, DROP, owner, broker, rules, False, True, value, None, now,
                           f"{_subject_name(owner, broker)}: BALANCE_DROP rule switched off")
            return
        window = subject.window
        if window is None:
            window = subject.window = PeakWindow()
        window.add(now, value)
        peak = window.peak(now, rules.drop_window_seconds)
        level = peak * factor
        holds = value <= level and value < peak
        clears = value > level * rules.hysteresis_factor
        if holds or (DROP, owner, broker) in self._open:
            minutes = f"{rules.drop_window_minutes:g} min"
            if holds:
                fell = (peak - value) / peak * HUNDRED if peak else HUNDRED
                text = (f"{_subject_name(owner, broker)} balance fell {fell:.1f}% from {money(peak)} to "
                        f"{money(value)} {self._base} within {minutes} (limit {rules.drop_percent:g}%)")
            else:
                text = (f"{_subject_name(owner, broker)} balance {money(value)} {self._base} is no longer "
                        f"{rules.drop_percent:g}% below its {minutes} high of {money(peak)} {self._base}")
            self._step(events, DROP, owner, broker, rules, holds, clears, value, level, now, text)

    def _account_error(self, events, rules: RuleSettings, state: AccountState, subject: _Subject, now) -> None:
        owner, broker = state.owner, state.broker
        reads, stale = rules.error_reads, rules.stale_minutes
        error_class = state.error_class or "error"
        name = _subject_name(owner, broker)
        if reads is None and stale is None:
            if (ERROR, owner, broker) in self._open:
                self._step(events, ERROR, owner, broker, rules, False, True, state.value, None, now,
                           f"{name}: ACCOUNT_ERROR rule switched off")
            return
        age = None if state.fetched_at is None else now - state.fetched_at
        if reads is not None and subject.failures >= reads:
            text = f"{name}: {subject.failures} consecutive failed reads ({error_class})"
        elif stale is not None and age is not None and age > stale * 60:
            text = f"{name}: last good read {age / 60:.0f} min ago ({error_class})"
        else:
            return
        self._step(events, ERROR, owner, broker, rules, True, False, state.value, None, now, text)

    def _step(self, events: list, kind: AlertType, owner: str, broker: str | None, rules: RuleSettings,
              holds: bool, clears: bool, value, threshold, now: float, message: str) -> None:
        """Move one alert: fire (or repeat after the cooldown) while it holds, resolve when it clears."""
        key = (kind, owner, broker)
        opened = self._open.get(key)
        exchange = None if broker is None else self._exchanges.get((owner, broker))
        if opened is None:
            if not holds:
                return
            self._open[key] = _Open(now, now)
            events.append(AlertEvent(kind, FIRING, LEVELS[kind], owner, broker, value, threshold, message, now, now,
                                     exchange=exchange, currency=self._base))
        elif holds:
            if now - opened.last_sent >= rules.cooldown_seconds:
                opened.last_sent = now
                events.append(AlertEvent(kind, FIRING, LEVELS[kind], owner, broker, value, threshold, message, now,
                                         opened.started_at, repeat=True, exchange=exchange, currency=self._base))
        elif clears:
            del self._open[key]
            events.append(AlertEvent(kind, RESOLVED, LEVELS[kind], owner, broker, value, threshold, message, now,
                                     opened.started_at, exchange=exchange, currency=self._base))
