"""Typed errors the library raises; the CLI turns them into one-line messages."""


class WazaError(Exception):
    """Base class for every error waza raises on purpose."""


class TelemetryError(WazaError):
    """A collector call that could not be carried out (raised only when ``strict=True``)."""


class UnknownSessionError(TelemetryError):
    """A call named a session id the collector does not have open."""


class UnreadableInputError(WazaError):
    """Input could not be read and strict reading was asked for."""


class NothingToAnalyzeError(WazaError):
    """The input held no session to analyse."""
