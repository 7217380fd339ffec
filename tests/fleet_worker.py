"""``python -m tests.fleet_worker --time-scale S <bot.worker arguments>``: `bot.app.worker.main`
with every exchange duration divided by S, for workers against time-scaled fakes (the tests and
the distributed benchmark). Everything else is the real entry point."""
import sys

from bot.app.worker import main

if __name__ == "__main__":
    args = sys.argv[1:]
    scale = 1.0
    if args[:1] == ["--time-scale"]:
        scale, args = float(args[1]), args[2:]
    sys.exit(main(args, time_scale=scale))
