"""Account states in memory: the cache (freshness, single flight), the balance service that reads
through `bot.exchanges`, and `StateView`, the read-only face every view depends on."""
