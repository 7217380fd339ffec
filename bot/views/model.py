"""PLACEHOLDER until the read model lands: the guide's summary from a StateView."""
from __future__ import annotations

from bot.core.state import sum_known


def build_read_model(view):
    return view


def user_balance_summary(view) -> dict:
    states = view.current_states()
    users = []
    for user in view.config.enabled_users():
        own = [s for s in states if s.owner == user.user_id]
        users.append({"user_id": user.user_id, "total": sum_known(own), "brokers": {s.broker: s.value for s in own}})
    users.sort(key=lambda u: (u["total"] is None, -(u["total"] or 0), u["user_id"]))
    known = [u["total"] for u in users if u["total"] is not None]
    total = sum(known) if users else 0
    return {"user_count": len(users), "total_capital": total if (known or not users) else None,
            "average_balance": (total / len(known)) if known else None, "users": users}
