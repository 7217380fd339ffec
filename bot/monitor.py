"""``python -m bot.monitor``: the headless monitor (see `bot.app.monitor`)."""
import sys

from bot.app.monitor import main

if __name__ == "__main__":
    sys.exit(main())
