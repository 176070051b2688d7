"""User-facing errors: one exception type, one exit code.

Every problem a user can fix (a missing or malformed data file, a bad flag)
is raised as :class:`UserError`. Command-line entry points catch it, print its
message without a traceback and exit with status 2.
"""

from __future__ import annotations

import sys
from typing import Callable, NoReturn, Optional

EXIT_USER_ERROR = 2
EXIT_TRAINING_ERROR = 3


class UserError(Exception):
  """An error in the user's input, with a message that says how to fix it."""


class DataError(UserError):
  """A malformed or missing data file.

  Attributes:
    path: the file at fault.
    line: 1-based line number, or None when the problem is not one line.
  """

  def __init__(self, path: str, message: str, line: Optional[int] = None):
    self.path = str(path)
    self.line = line
    where = f"{self.path}:{line}" if line is not None else self.path
    super().__init__(f"{where}: {message}")


class TrainingError(Exception):
  """Training cannot go on (a non-finite loss); the last checkpoint is kept."""


def exit_on_user_error(fn: Callable[..., object]) -> Callable[..., object]:
  """Wraps an absl ``main``: UserError exits 2, TrainingError exits 3."""

  def wrapped(*args, **kwargs):
    try:
      return fn(*args, **kwargs)
    except UserError as e:
      fail(str(e))
    except TrainingError as e:
      fail(str(e), EXIT_TRAINING_ERROR)

  wrapped.__name__ = getattr(fn, "__name__", "main")
  wrapped.__doc__ = fn.__doc__
  return wrapped


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
  """Prints ``error: message`` to stderr and exits with ``code``."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)
