"""The distributed mode: reads spread over worker processes on many hosts (``fetch.mode``
``distributed``, PostgreSQL only).

- `bot.distributed.queue`: the task queue (procrastinate on the store's PostgreSQL): one job per
  account read, the key's lock (one read per key at a time, fleet-wide, in order), at most one
  waiting read per account, stalled jobs given back;
- `bot.distributed.worker`: ``python -m bot.worker``, which runs the jobs with its own
  per-address budgets and writes the shared state (`bot.store.fleet`: the key's nonce floor and
  spacing carried by the database, by its clock);
- `bot.distributed.rounds`: the follower side (the monitor, the web, the CLI, the in-process
  manager): rounds and forced refreshes become jobs; the states come back through the shared
  state (`bot.balances.shared`).
"""
