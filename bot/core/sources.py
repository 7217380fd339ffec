"""Why a read happened: the snapshot ``source`` values of the history store (seed 003)."""

INITIAL = "initial_connection"   # the account's first successful read ever
ON_DEMAND = "account_sync"       # a read started because a caller asked for a stale account
FORCED = "manual_sync"           # refresh(force=True): the CLI's --refresh, POST /api/refresh
SCHEDULED = "scheduled_sync"     # the scheduler's round
HOLDINGS = "holdings_sync"       # per-asset holdings synced (accepted as a filter value)
FOLLOWED = "followed"            # a state another process read (shared state): never a snapshot source

SOURCES = (INITIAL, ON_DEMAND, FORCED, SCHEDULED)
