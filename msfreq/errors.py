"""The small error hierarchy every msfreq failure belongs to."""

__all__ = ["MsfreqError", "ParameterError", "FormatError", "AudioError"]


class MsfreqError(Exception):
    """Base class of every error msfreq raises on purpose."""


class ParameterError(MsfreqError, ValueError):
    """A parameter or an input array is out of range or of the wrong kind."""


class FormatError(MsfreqError, ValueError):
    """A file is not a valid msfreq HDF5 file (or is corrupted)."""


class AudioError(MsfreqError, ValueError):
    """An audio file cannot be read or written."""
