"""``python -m tests.fleet_worker --time-scale S [--poll-seconds P] <bot.worker arguments>``:
`bot.app.worker.main` with every exchange duration divided by S (and idle queue workers looking
for jobs every P seconds instead of every second: a key's next read waits for that poll), for
workers against time-scaled fakes (the tests and the distributed benchmark). Everything else is
the real entry point."""
import sys

from bot.app.worker import main

if __name__ == "__main__":
    args = sys.argv[1:]
    scale, poll = 1.0, None
    if args[:1] == ["--time-scale"]:
        scale, args = float(args[1]), args[2:]
    if args[:1] == ["--poll-seconds"]:
        poll, args = float(args[1]), args[2:]
    sys.exit(main(args, time_scale=scale, poll_seconds=poll))
