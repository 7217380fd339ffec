#!/usr/bin/env python3
"""Print every account's balance: ``show_user_balances.py [--config DIR] [--json] [--user ID] [--refresh]``."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bot.app.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
