"""Hostile msfreq files: crafted with plain h5py from a valid encode, each must be refused
cleanly (FormatError naming the file, one line and exit 1 from the CLI, no output)."""

from __future__ import annotations

import pickle
import shutil
import struct

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import (
    damaged_reading_case,
    fuzz_case,
    music_like,
    pcm16,
    reading_paths,
    write_audio,
    write_v1,
)

import msfreq
from msfreq.cli import cli
from msfreq.convert import EncodeOptions, decode_file, encode_file
from msfreq.errors import FormatError
from msfreq.pool import Outcome, run_jobs
from msfreq.quantize import FILL_CODE
from msfreq.store import FORMAT_VERSION
from msfreq.store.layout import FILL_LEVEL, chunk_shape, dataset_name, filters_for

RATE = 8000


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """An encoded 16-bit file (integer storage, zstd) and a float-storage one."""
    folder = tmp_path_factory.mktemp("valid")
    source = write_audio(folder / "a.wav", pcm16(music_like(2 * RATE, RATE, 2, seed=3) * 0.5), RATE)
    encode_file(source, folder / "levels.h5")
    msfreq.save(msfreq.encode(music_like(2 * RATE, RATE, 1, seed=4), RATE), folder / "float.h5")
    return folder


def _copy(valid, tmp_path, name="levels.h5"):
    target = tmp_path / "crafted.h5"
    shutil.copy(valid / name, target)
    return target


def _external_storage(path, tmp_path):
    with h5py.File(path, "r+") as handle:
        shape, dtype = handle["residuals/low"].shape, handle["residuals/low"].dtype
        attrs = dict(handle["residuals/low"].attrs)
        del handle["residuals/low"]
        secret = tmp_path / "secret"
        secret.write_bytes(b"root:x:0:0" * 100000)
        dataset = handle.create_dataset("residuals/low", shape=shape, dtype=dtype,
                                        external=[(str(secret), 0, h5py.h5f.UNLIMITED)])
        dataset.attrs.update(attrs)


def _external_link(path, tmp_path):
    other = tmp_path / "other.h5"
    shutil.copy(path, other)
    with h5py.File(path, "r+") as handle:
        del handle["octaves/03"]
        handle["octaves/03"] = h5py.ExternalLink(str(other), "/octaves/03")


def _soft_link(path, tmp_path):
    with h5py.File(path, "r+") as handle:
        handle.move("residuals/high", "hidden_high")
        handle["residuals/high"] = h5py.SoftLink("/hidden_high")


def _virtual(path, tmp_path):
    other = tmp_path / "source.h5"
    shutil.copy(path, other)
    with h5py.File(path, "r+") as handle:
        dataset = handle["residuals/low"]
        shape, dtype, attrs = dataset.shape, dataset.dtype, dict(dataset.attrs)
        del handle["residuals/low"]
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(str(other), "residuals/low", shape=shape)
        virtual = handle.create_virtual_dataset("residuals/low", layout, fillvalue=0)
        virtual.attrs.update(attrs)


def _missing_chunk(path, tmp_path):
    with h5py.File(path, "r") as handle:
        name = next(f"octaves/{j:02d}" for j in range(20, -1, -1)
                    if f"octaves/{j:02d}" in handle and handle[f"octaves/{j:02d}"].id.get_num_chunks() > 1)
        offset = handle[name].id.get_chunk_info(1).byte_offset
    raw = bytearray(path.read_bytes())
    pattern = struct.pack("<Q", offset)
    at = raw.find(pattern)
    assert at > 0
    raw[at : at + 8] = b"\xff" * 8  # HDF5's "undefined address": the chunk reads as fill
    path.write_bytes(bytes(raw))


def _fill_values(path, tmp_path):
    with h5py.File(path, "r+") as handle:
        data = handle["octaves/02"][...]
        data[0, 0, 0, 0] = FILL_LEVEL
        handle["octaves/02"][...] = data


def _nan(path, tmp_path):
    with h5py.File(path, "r+") as handle:
        data = handle["octaves/02"][...]
        data[0, 0, 0] = np.nan
        handle["octaves/02"][...] = data


def _attribute(name, value):
    def change(path, tmp_path):
        with h5py.File(path, "r+") as handle:
            handle.attrs[name] = value
    return change


def _vlen_attribute(path, tmp_path):
    with h5py.File(path, "r+") as handle:
        handle.attrs["dtype"] = "complex64"  # a variable-length string: lives in the global heap


def _dataset_attribute(path, tmp_path):
    with h5py.File(path, "r+") as handle:
        handle["octaves/03"].attrs["step"] = 2.0**-10


def _bigger_chunks(path, tmp_path):
    with h5py.File(path, "r+") as handle:
        dataset = handle["residuals/high"]
        data, attrs, fill = dataset[...], dict(dataset.attrs), dataset.fillvalue
        del handle["residuals/high"]
        handle.create_dataset("residuals/high", data=data, chunks=data.shape, fillvalue=fill,
                              fletcher32=True, compression="gzip").attrs.update(attrs)


def _sparse_bomb(path, tmp_path):
    """1000 hours declared, no chunk stored: 29 kB on disk."""
    grid = msfreq.read_header(path).grid
    n_samples = 1000 * 3600 * RATE
    length = msfreq.transform.transform_units(n_samples, grid) * grid.hop_unit
    with h5py.File(path, "r+") as handle:
        handle.attrs["n_samples"], handle.attrs["length"] = n_samples, length
        for band in grid.bands:
            name = dataset_name(band)
            old = handle[name]
            shape = (old.shape[0], old.shape[1], length // band.hop) + old.shape[3:]
            chunks = chunk_shape(shape, old.dtype)
            attrs, dtype, fill = dict(old.attrs), old.dtype, old.fillvalue
            del handle[name]
            handle.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks, fillvalue=fill,
                                  **filters_for("zstd")).attrs.update(attrs)


def _span_in_version_2(path, tmp_path):
    with h5py.File(path, "r+") as handle:
        handle.attrs["span"], handle.attrs["format_version"] = 3, 2


def _without(name):
    def change(path, tmp_path):
        with h5py.File(path, "r+") as handle:
            del handle.attrs[name]
    return change


def _as_version_3(path, tmp_path):
    """Correction codes taken away as a version-3 writer would have left them."""
    with h5py.File(path, "r+") as handle:
        handle.attrs["format_version"] = 3
        handle.attrs["compression"] = np.bytes_(b"zstd")  # lz4 files need no grid in version 3
        del handle.attrs["corrections"]


def _corrections(change):
    """Replace the correction codes' dataset by ``change(handle, data, fill)``."""
    def craft(path, tmp_path):
        with h5py.File(path, "r+") as handle:
            data, fill = handle["corrections"][...], handle["corrections"].fillvalue
            del handle["corrections"]
            change(handle, data, fill, tmp_path)
    return craft


def _codes_external(handle, data, fill, tmp_path):
    secret = tmp_path / "codes"
    secret.write_bytes(bytes(data.size))
    handle.create_dataset("corrections", shape=data.shape, dtype=data.dtype,
                          external=[(str(secret), 0, h5py.h5f.UNLIMITED)])


def _codes_elsewhere(handle, data, fill, tmp_path):
    handle.create_dataset("hidden", data=data, chunks=(1, data.shape[1]), fillvalue=fill,
                          **filters_for("zstd"))
    handle["corrections"] = h5py.SoftLink("/hidden")


def _codes_wider(handle, data, fill, tmp_path):
    handle.create_dataset("corrections", data=data.astype(np.int16), chunks=(1, data.shape[1]),
                          fillvalue=fill, **filters_for("zstd"))


def _missing_codes_chunk(path, tmp_path):
    with h5py.File(path, "r") as handle:
        offset = handle["corrections"].id.get_chunk_info(1).byte_offset
    raw = bytearray(path.read_bytes())
    at = raw.find(struct.pack("<Q", offset))
    assert at > 0
    raw[at : at + 8] = b"\xff" * 8
    path.write_bytes(bytes(raw))


CASES = [
    ("external storage", _external_storage, "external storage|dtype|chunked"),
    ("external link", _external_link, "ExternalLink, not an object stored in the file"),
    ("soft link", _soft_link, "SoftLink, not an object stored in the file"),
    ("virtual dataset", _virtual, "virtual"),
    ("missing chunk", _missing_chunk, "damaged chunk index|chunks"),
    ("fill values", _fill_values, "missing data"),
    ("sample_rate edited", _attribute("sample_rate", 16000), "header checksum|hop_unit|shape"),
    ("n_samples lowered", _attribute("n_samples", RATE), "length .* does not match|header checksum"),
    ("n_samples nudged", _attribute("n_samples", 2 * RATE - 1),
     "header checksum mismatch|corrections has shape"),
    ("version 0", _attribute("format_version", 0), "not a valid version"),
    ("version -5", _attribute("format_version", -5), "not a valid version"),
    ("newer version", _attribute("format_version", FORMAT_VERSION + 1), "newer msfreq"),
    ("version 3 without its grid", _as_version_3, "source_grid_bits is missing"),
    ("codes in a version-3 file", _attribute("format_version", 3), "correction codes in a version-3"),
    ("version 4 without codes", _without("corrections"), "corrections is missing"),
    ("codes on a 40-bit grid", _attribute("corrections", 40), "corrections .*outside"),
    ("codes with float storage", _attribute("storage", np.bytes_(b"float")),
     "correction codes with storage 'float'"),
    ("first_bin edited", _attribute("first_bin", 7), "first_bin 7 does not match|header checksum"),
    ("codes deleted", _corrections(lambda *args: None), "missing corrections"),
    ("codes outside the file", _corrections(_codes_external), "external storage|chunked|filters"),
    ("codes behind a soft link", _corrections(_codes_elsewhere), "SoftLink, not an object"),
    ("codes widened", _corrections(_codes_wider), "corrections has dtype int16"),
    ("codes chunk missing", _missing_codes_chunk, "damaged chunk index|chunks"),
    ("huge attribute", _attribute("notes", np.zeros(20000)), "larger than any msfreq writes"),
    ("span in a version-2 file", _span_in_version_2, "span 3 in a version-2 file"),
    ("string for a number", _attribute("n_channels", np.bytes_(b"two")), "must be an integer"),
    ("float for an integer", _attribute("n_channels", 2.0), "must be an integer"),
    ("negative rate", _attribute("sample_rate", -8000), "outside"),
    ("variable-length string", _vlen_attribute, "variable-length"),
    ("dataset attribute edited", _dataset_attribute, "header checksum mismatch"),
    ("decompression bomb", _bigger_chunks, "chunks|filters"),
    ("sparse bomb", _sparse_bomb, "holds 0 of its"),
]


@pytest.mark.parametrize(("name", "craft", "message"), CASES, ids=[case[0] for case in CASES])
def test_crafted_files_are_refused(valid, tmp_path, name, craft, message):
    path = _copy(valid, tmp_path)
    craft(path, tmp_path)
    for action in (msfreq.load, msfreq.verify, msfreq.convert.verify_decode):
        with pytest.raises(FormatError, match=message) as caught:
            action(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(FormatError):
        decode_file(path, tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()
    result = CliRunner().invoke(cli, ["decode", str(path), "-o", str(tmp_path / "back"), "-j", "1"])
    assert result.exit_code == 1
    failures = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(failures) == 1 and "crafted.h5" in failures[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "back").exists() or not list((tmp_path / "back").iterdir())


def _set_code(path, value):
    with h5py.File(path, "r+") as handle:
        handle["corrections"][1, 7] = value  # written anew: its chunk's checksum is valid


@pytest.mark.parametrize(("value", "message"), [
    (FILL_CODE, "missing data in corrections samples"),
    (40, "damaged: the decoded samples differ"),
])
def test_bad_correction_codes_are_refused_by_every_decode(valid, tmp_path, value, message):
    """A fill marker among the codes (a chunk that was never written) or a code changed with
    a valid chunk checksum: every path that decodes refuses the file; loading coefficients,
    which the codes do not touch, still works."""
    path = _copy(valid, tmp_path)
    _set_code(path, value)
    actions = [msfreq.convert.verify_decode, lambda p: decode_file(p, tmp_path / "out.wav")]
    if value == FILL_CODE:
        actions.append(msfreq.verify)
    for action in actions:
        with pytest.raises(FormatError, match=message) as caught:
            action(path)
        assert str(path) in str(caught.value)
    assert not (tmp_path / "out.wav").exists()
    assert msfreq.load(path).n_channels == 2
    result = CliRunner().invoke(cli, ["decode", str(path), "-o", str(tmp_path / "back"), "-j", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_nan_in_float_storage_is_refused(valid, tmp_path):
    path = _copy(valid, tmp_path, "float.h5")
    _nan(path, tmp_path)
    with pytest.raises(FormatError, match="non-finite coefficients in octaves/02"):
        msfreq.load(path)


def test_version_1_files_are_still_read(tmp_path):
    x = pcm16(music_like(3 * RATE, RATE, 2, seed=5) * 0.5)
    representation = msfreq.encode(x, RATE)
    path = write_v1(tmp_path / "old.h5", representation)
    header = msfreq.read_header(path)
    assert header.format_version == 1 and header.exact is None and header.compression == "gzip"
    loaded = msfreq.load(path)
    for name in representation.names:
        np.testing.assert_array_equal(loaded[name], representation[name])
    assert msfreq.verify(path).n_samples == x.shape[0]
    np.testing.assert_array_equal(np.round(msfreq.decode(loaded) * 32768), np.round(x * 32768))


def test_version_1_missing_chunk_is_found(tmp_path):
    """Version 1 chunk indexes have no checksums: the chunk count catches what is lost."""
    path = write_v1(tmp_path / "old.h5", msfreq.encode(music_like(4 * RATE, RATE, 1), RATE))
    _missing_chunk(path, tmp_path)
    with pytest.raises(FormatError, match="chunk.*missing"):
        msfreq.load(path)


def _damage_targets(path):
    """Byte offsets outside every chunk's data (the metadata)."""
    data = np.ones(path.stat().st_size, dtype=bool)
    with h5py.File(path, "r") as handle:
        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                item.id.chunk_iter(lambda info: data.__setitem__(
                    slice(info.byte_offset, info.byte_offset + info.size), False))
        handle.visititems(visit)
    return np.flatnonzero(data)


def _run_cases(jobs: list, task) -> list[Outcome]:
    """Run ``task`` on every damaged file in two worker processes (a crash or a hang of a
    minute is a ``failed`` outcome); return one outcome per job."""
    outcomes: list[Outcome] = []
    run_jobs(jobs, task, workers=2, time_limit=lambda job: 60.0,
             crashed=lambda job, reason: Outcome(job, "failed", reason), on_outcome=outcomes.append)
    assert len(outcomes) == len(jobs)
    return outcomes


@pytest.mark.slow
def test_metadata_fuzz(valid, tmp_path):
    """Damage metadata bytes at 240 seeded places; every decode must be a clean refusal or
    the undamaged audio: no different audio, traceback, crash or hang."""
    original = valid / "levels.h5"
    reference = tmp_path / "reference.npy"
    np.save(reference, msfreq.decode(msfreq.load(original)))
    targets = _damage_targets(original)
    rng = np.random.default_rng(2026)
    raw = original.read_bytes()
    jobs = []
    for case in range(240):
        damaged = bytearray(raw)
        start = int(rng.choice(targets))
        width = int(rng.integers(1, 9))
        if case % 3 == 0:
            damaged[start : start + width] = bytes(width)
        else:
            damaged[start : start + width] = rng.integers(0, 256, width, dtype=np.uint8).tobytes()
        path = tmp_path / f"case{case:03d}.h5"
        path.write_bytes(bytes(damaged))
        jobs.append((path, reference))
    outcomes = _run_cases(jobs, fuzz_case)
    failed = [(outcome.job[0].name, outcome.message) for outcome in outcomes if outcome.status == "failed"]
    different = [outcome.job[0].name for outcome in outcomes if outcome.detail == "different"]
    assert failed == [] and different == []
    kinds = {outcome.detail for outcome in outcomes}
    assert kinds <= {"same", "refused"} and "refused" in kinds


@pytest.mark.slow
def test_damage_anywhere_every_reading_path(tmp_path):
    """Damage 96 files anywhere (zeroed or random bytes, one flipped bit, truncation) across
    four kinds (16-bit levels with codes in lz4 and gzip, 24-bit levels in zstd, floats
    uncompressed): decode, a range read, a Dataset crop, inspect and verify, each on its own,
    give the undamaged file's numbers or refuse cleanly; no traceback, crash, hang or
    different numbers (a campaign of 1,500 such files found none either)."""
    x = music_like(2 * RATE, RATE, 2, seed=5) * 0.5
    params = msfreq.params.TransformParams(bins_per_octave=12)
    originals = []
    for name, subtype, compression in (("a", "PCM_16", "lz4"), ("b", "PCM_16", "gzip"),
                                       ("c", "PCM_24", "zstd"), ("d", "FLOAT", "none")):
        source = write_audio(tmp_path / f"{name}.wav", x, RATE, subtype=subtype)
        encoded = tmp_path / f"{name}.h5"
        encode_file(source, encoded, EncodeOptions(params=params, compression=compression))
        reference = tmp_path / f"{name}.pickle"
        reference.write_bytes(pickle.dumps(reading_paths(encoded)))
        originals.append((encoded, reference))
    rng = np.random.default_rng(2027)
    jobs = []
    for case in range(96):
        original, reference = originals[case % 4]
        raw = bytearray(original.read_bytes())
        at, kind = int(rng.integers(0, len(raw))), case // 4 % 4
        if kind == 0:
            raw[at : at + 8] = bytes(len(raw[at : at + 8]))
        elif kind == 1:
            raw[at : at + 8] = rng.integers(0, 256, len(raw[at : at + 8]), dtype=np.uint8).tobytes()
        elif kind == 2:
            raw[at] ^= 1 << int(rng.integers(0, 8))
        else:
            del raw[at:]
        path = tmp_path / f"case{case:03d}.h5"
        path.write_bytes(bytes(raw))
        jobs.append((path, reference))
    outcomes = _run_cases(jobs, damaged_reading_case)
    assert [(o.job[0].name, o.message) for o in outcomes if o.status != "done"] == []
    refused = sum("refused" in outcome.detail for outcome in outcomes)
    assert refused > 80  # the damage was seen (most bytes are chunks of coefficients)


def test_a_damaged_object_header_is_named_in_hdf5s_words(valid, tmp_path):
    """Metadata damage that HDF5 reports (a failed metadata checksum) reads as its own words:
    0.10.0 wrote "damaged file (KeyError: 'Unable to ...')"."""
    original = valid / "levels.h5"
    raw = original.read_bytes()
    seen = []
    for at in _damage_targets(original)[::7]:
        damaged = bytearray(raw)
        damaged[at : at + 4] = b"\xa5\x5a\xa5\x5a"
        path = tmp_path / "damaged.h5"
        path.write_bytes(bytes(damaged))
        try:
            msfreq.read_header(path)
        except FormatError as error:
            if "damaged file (" in str(error):
                seen.append(str(error))
        if len(seen) >= 5:
            break
    assert seen
    for message in seen:
        assert message.startswith(f"{path}: damaged file (")
        assert "KeyError" not in message and "OSError" not in message and "('" not in message
