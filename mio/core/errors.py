"""Errors that name what was wrong, so a user can fix their input."""


class MioError(Exception):
    """Base class of every error Mio raises on purpose."""


class ConfigError(MioError):
    """A configuration file, override or CLI option is invalid."""


class BackendError(MioError):
    """An unknown backend name, or a backend that cannot start (missing package or file)."""


class InputError(MioError, ValueError):
    """User-supplied data (text, audio, parameters) is malformed or out of bounds."""


class CheckpointError(MioError):
    """A model checkpoint is missing, incomplete or does not fit the model."""
