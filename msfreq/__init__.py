"""msfreq: invertible multi-scale (octave-by-octave constant-Q) audio representation."""

from msfreq.convert import read_audio
from msfreq.dataset import AudioDataset, Dataset
from msfreq.errors import AudioError, FormatError, MsfreqError, ParameterError
from msfreq.params import TransformParams
from msfreq.phase import reconstruct_phase, unstack
from msfreq.representation import Representation, decode, encode
from msfreq.store import Header, load, read_header, save, verify
from msfreq.version import __version__

__all__ = [
    "__version__",
    "AudioDataset",
    "AudioError",
    "Dataset",
    "FormatError",
    "Header",
    "MsfreqError",
    "ParameterError",
    "Representation",
    "TransformParams",
    "decode",
    "encode",
    "load",
    "read_audio",
    "read_header",
    "reconstruct_phase",
    "save",
    "unstack",
    "verify",
]
