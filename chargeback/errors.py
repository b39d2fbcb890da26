"""The base of errors a user can act on: the CLI prints their message, not a traceback."""


class UserError(Exception):
    """A mistake in input or configuration, explained in one sentence."""
