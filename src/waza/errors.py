"""Typed errors the library raises; the CLI turns them into one-line messages.

``exit_code`` is what the command line exits with: 1 when the work could not
be done, 2 when the command was asked for something it cannot do as given
(a missing path, a typo in a skill name, an extra that is not installed).
"""


class WazaError(Exception):
    """Base class for every error waza raises on purpose."""

    exit_code = 1


class UsageError(WazaError):
    """The request cannot be carried out as given; the message says how to fix it."""

    exit_code = 2


class MissingExtraError(UsageError):
    """A feature needs an optional dependency that is not installed."""

    def __init__(self, feature: str, extra: str, module: str):
        super().__init__(f"{feature} needs {module}, which is not installed: pip install 'waza[{extra}]'")
        self.extra = extra


class TelemetryError(WazaError):
    """A collector call that could not be carried out (raised only when ``strict=True``)."""


class UnknownSessionError(TelemetryError):
    """A call named a session id the collector does not have open."""


class UnreadableInputError(WazaError):
    """Input could not be read and strict reading was asked for."""


class InputChangedError(WazaError):
    """Files moved while they were read (a segment compressed, compacted or pruned meanwhile)."""


class NothingToAnalyzeError(WazaError):
    """The input held no session to analyze."""


class OutOfMemoryError(WazaError):
    """The analysis needed more memory than its limit, and what it held could not be spilled."""


class SpillSpaceError(WazaError):
    """The disk that holds the analysis's spill files filled up."""
