"""Command-line parsing for the entry points: a usage error is one line, never a usage dump."""
from __future__ import annotations

import argparse


class UsageError(Exception):
    """Bad command-line usage; the message is the one line to print."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)
