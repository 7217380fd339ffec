"""``python -m bot.worker``: a reader of the distributed mode (see `bot.app.worker`)."""
import sys

from bot.app.worker import main

if __name__ == "__main__":
    sys.exit(main())
