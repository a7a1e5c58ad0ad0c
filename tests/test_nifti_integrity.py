"""Compressed NIfTI files are verified whole (brainkit.nifti): a corrupt byte is an error, never a wrong value."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pytest

from brainkit import nifti
from brainkit.data.readers.inputs import read_brain_input
from brainkit.data.readers.volumes import read_masked_betas
from brainkit.errors import FileFormatError
from brainkit.nifti import load_nifti, verify_gzip

CORRUPT = "is not an intact gzip file: .*Re-download or re-copy the file"
SHAPE = (8, 7, 6, 5)  # X, Y, Z, trials: unequal, so a swapped axis cannot pass


@pytest.fixture
def betas(tmp_path):
    """A real 4-D float32 .nii.gz written by nibabel, its values and a mask of about half its voxels."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal(SHAPE).astype(np.float32)
    path = tmp_path / "betas_session01.nii.gz"
    nib.save(nib.Nifti1Image(values, np.diag([1.8, 1.8, 1.8, 1.0])), str(path))
    return path, values, rng.random(SHAPE[:3]) < 0.5


def test_an_intact_file_loads_what_nibabel_loads(betas):
    path, values, mask = betas
    np.testing.assert_array_equal(np.asanyarray(load_nifti(path).dataobj), values)
    np.testing.assert_array_equal(np.asanyarray(nib.load(str(path)).dataobj), values)
    np.testing.assert_array_equal(read_masked_betas(path, mask, block_trials=2), values[mask].T)
    np.testing.assert_array_equal(read_brain_input(path, mask), values[mask].T)


def test_every_single_byte_corruption_raises_through_the_readers(betas, tmp_path):
    """100 seeded corruptions anywhere but the header's MTIME/XFL/OS bytes (4-9), which no checksum covers."""
    path, _, mask = betas
    intact = path.read_bytes()
    rng = np.random.default_rng(1)
    positions = [p for p in range(len(intact)) if not 4 <= p <= 9]
    for trial, position in enumerate(rng.choice(positions, size=100)):
        corrupt = bytearray(intact)
        corrupt[position] = (intact[position] + int(rng.integers(1, 256))) % 256  # never the old byte
        bad = tmp_path / f"corrupt{trial}.nii.gz"
        bad.write_bytes(corrupt)
        with pytest.raises(FileFormatError, match=CORRUPT):
            load_nifti(bad)
        with pytest.raises(FileFormatError, match=CORRUPT):
            read_masked_betas(bad, mask, block_trials=2)  # the NSD NIfTI beta path: sliced reads
        with pytest.raises(FileFormatError, match=CORRUPT):
            read_brain_input(bad, mask)  # `brainkit predict` on a .nii.gz


def test_truncated_and_padded_files_raise(betas, tmp_path):
    path, _, mask = betas
    intact = path.read_bytes()
    for name, data, problem in [
        ("short_trailer", intact[:-3], "the file ends inside the gzip trailer: it is truncated"),
        ("half", intact[: len(intact) // 2], "the compressed data end early: the file is truncated"),
        ("header", intact[:7], "the gzip header is truncated"),
        ("padded", intact + b"\0\0", "2 bytes of trailing garbage after the last gzip member"),
        ("plain", gzip.decompress(intact), "it does not start with the gzip magic bytes 1f 8b"),
    ]:
        bad = tmp_path / f"{name}.nii.gz"
        bad.write_bytes(data)
        with pytest.raises(FileFormatError, match=f"{bad}.*{problem}"):
            read_masked_betas(bad, mask)


def test_reserved_flags_and_a_bad_header_crc_raise(tmp_path):
    data = gzip.compress(b"brainkit" * 100)
    reserved = tmp_path / "reserved.gz"
    reserved.write_bytes(data[:3] + bytes([0x20]) + data[4:])
    with pytest.raises(FileFormatError, match=r"reserved gzip header flag bits are set \(FLG = 0x20\)"):
        verify_gzip(reserved)
    header_crc = tmp_path / "header_crc.gz"  # FHCRC set: two header CRC bytes that cannot match
    header_crc.write_bytes(data[:3] + bytes([0x02]) + data[4:10] + b"\0\0" + data[10:])
    with pytest.raises(FileFormatError, match="gzip header CRC mismatch"):
        verify_gzip(header_crc)


def test_several_members_and_header_fields_are_read_in_full(tmp_path):
    """What gzip tools write: a file name (gzip.open), several members (cat a.gz b.gz), an empty one."""
    payload = np.arange(300_000, dtype=np.float32).tobytes()
    named = tmp_path / "named.gz"
    with gzip.open(named, "wb") as handle:
        handle.write(payload)
    verify_gzip(named)
    joined = tmp_path / "joined.gz"
    joined.write_bytes(gzip.compress(payload) + gzip.compress(b"") + gzip.compress(bytes(3 << 20)))
    verify_gzip(joined)
    damaged = bytearray(joined.read_bytes())
    damaged[-5] ^= 0x01  # the last member's CRC
    joined.write_bytes(damaged)
    with pytest.raises(FileFormatError, match="member 3: gzip CRC mismatch"):
        verify_gzip(joined)


def test_a_file_is_verified_once_until_it_changes(betas, monkeypatch):
    path, values, _ = betas
    checks = []
    check = nifti._check_members
    monkeypatch.setattr(nifti, "_check_members", lambda stream: checks.append(1) or check(stream))
    load_nifti(path)
    load_nifti(path, mmap=False)
    assert len(checks) == 1
    intact = path.read_bytes()
    corrupt = bytearray(intact)
    corrupt[len(intact) // 2] ^= 0xFF  # same size: only the mtime says it changed
    stat = path.stat()
    path.write_bytes(corrupt)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(FileFormatError, match=CORRUPT):
        load_nifti(path)
    path.write_bytes(intact + gzip.compress(b""))  # a new size, intact again
    np.testing.assert_array_equal(np.asanyarray(load_nifti(path).dataobj), values)
    assert len(checks) == 3
    load_nifti(path)
    assert len(checks) == 3


def test_plain_nifti_files_are_not_read_twice(betas, tmp_path, monkeypatch):
    path, values, _ = betas
    plain = tmp_path / "plain.nii"
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    monkeypatch.setattr(nifti, "verify_gzip", lambda path: pytest.fail("a plain .nii has no gzip to verify"))
    np.testing.assert_array_equal(np.asanyarray(load_nifti(plain).dataobj), values)
