"""Reading configuration files safely: a kind check before anything is opened.

Every file of the configuration (``settings.json``, ``master.json``, ``users/*.json``, ``.env``)
goes through `read_text`: it must be a regular file (a symbolic link to one is fine; a FIFO, a
device, a socket, a directory, a dangling link or a link loop is refused), at most
`MAX_FILE_BYTES`, and UTF-8 (a leading byte-order mark is ignored). The file is opened with
``O_NONBLOCK`` and checked again on the open descriptor, so a FIFO swapped in after the check
cannot make a reader wait forever. `read_json_object` then parses it with exact decimals, no
NaN or Infinity, and at most `MAX_JSON_DEPTH` levels of nesting.

Every refusal is one `ConfigError` naming the file. `file_kind` tells whether a path is absent
(optional files may be), a regular file, a directory or something unusable, without opening it.
"""
from __future__ import annotations

import errno
import json
import os
import stat
from decimal import Decimal
from pathlib import Path

MAX_FILE_BYTES = 1024 * 1024  # 1 MiB: a thousand users of brokers fit in one file many times over
MAX_JSON_DEPTH = 32           # settings need 4 levels; ccxt ``options`` a few more

ABSENT, REGULAR, DIRECTORY = "absent", "regular", "directory"

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file and the field."""


def file_kind(path: Path, expected: str = "a regular file") -> str:
    """`ABSENT`, `REGULAR` or `DIRECTORY` for ``path`` (symbolic links followed); raises
    ConfigError for a dangling link, a link loop, an unreadable entry or any other kind of file
    (``expected`` says in that message what it should have been)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise ConfigError(f"{path}: is a symbolic link to a missing file") from None
        return ABSENT
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path}: is a symbolic link loop") from None
        raise ConfigError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISREG(info.st_mode):
        return REGULAR
    if stat.S_ISDIR(info.st_mode):
        return DIRECTORY
    raise ConfigError(f"{path}: is {_describe(info.st_mode)}, not {expected}")


def _describe(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def read_text(path: Path) -> str:
    """The UTF-8 text of the regular file ``path`` (see the module docstring). Raises ConfigError."""
    kind = file_kind(path)
    if kind == ABSENT:
        raise ConfigError(f"{path}: cannot read file (No such file or directory)")
    if kind == DIRECTORY:
        raise ConfigError(f"{path}: is a directory, not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.strerror or type(exc).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # replaced between the check and the open
            raise ConfigError(f"{path}: is {_describe(info.st_mode)}, not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: is {info.st_size} bytes, more than the {MAX_FILE_BYTES} bytes allowed")
        with os.fdopen(fd, "rb", closefd=True) as handle:
            fd = -1
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.strerror or type(exc).__name__})") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: is more than the {MAX_FILE_BYTES} bytes allowed")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset "
                          f"{exc.start})") from None


def read_json_object(path: Path) -> dict:
    """The JSON object in ``path``: numbers with a fraction or exponent as Decimal, integers as
    int, NaN and Infinity refused, nesting bounded. Raises ConfigError."""
    text = read_text(path)

    def constant(name: str):
        raise ConfigError(f"{path}: {name} is not a number JSON allows")

    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{path}: malformed JSON: {str(exc).split(':', 1)[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    if _depth(data) > MAX_JSON_DEPTH:
        raise ConfigError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    return data


def _depth(value) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_JSON_DEPTH:
            stack.extend((child, level + 1) for child in children)
    return deepest
