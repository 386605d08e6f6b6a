"""The error type shared by every layer."""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; the CLI prints it as one line without a traceback."""
