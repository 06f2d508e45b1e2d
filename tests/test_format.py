"""Promises about the bytes of the data file: golden records, round trips, truncated and
garbage input.

The golden bytes are typed out here on purpose: they are format 1.1 as semidbm 0.5.1
writes it (``test_interop.py`` checks that against files 0.5.1 wrote), so a change to
them is a change of file format.  Sizes and offsets, though, come from the struct
constants of :mod:`semidbm.format`, never from hand-typed numbers.
"""
import mmap
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
import semidbm
from semidbm import format

HEADER_GOLDEN = b'SEMI\x00\x01\x00\x01'
#: put b'key' -> b'value': !ii sizes, key, value, !I crc32(b'keyvalue').
PUT_GOLDEN = b'\x00\x00\x00\x03\x00\x00\x00\x05' b'key' b'value' b'\xc6\x55\xf3\xe6'
#: delete b'key': !ii (3, -1), key, !I crc32(b'key').
DELETE_GOLDEN = b'\x00\x00\x00\x03\xff\xff\xff\xff' b'key' b'\x8a\x90\xab\xa9'
#: put b'' -> b'': two zero sizes and crc32(b'') == 0.
EMPTY_PUT_GOLDEN = b'\x00\x00\x00\x00\x00\x00\x00\x00' b'\x00\x00\x00\x00'
#: put b'k2' -> b'\x00\xff' (binary value).
BINARY_PUT_GOLDEN = b'\x00\x00\x00\x02\x00\x00\x00\x02' b'k2' b'\x00\xff' b'\xc7\x8e\x71\x6d'
#: put 'é' -> 'v' through the store: the str key is stored as its UTF-8 bytes.
TEXT_PUT_GOLDEN = b'\x00\x00\x00\x02\x00\x00\x00\x01' b'\xc3\xa9' b'v' b'\xaa\x0b\x22\xa2'

PATH = '/some/db/data'

keys = st.binary(max_size=12)
values = st.binary(max_size=40)
#: A put (key, value) or a delete (key, None).
operations = st.lists(st.tuples(keys, st.none() | values), max_size=8)


def encode(ops):
    """Header plus the records of *ops*; also the expected scan of them."""
    parts, expected = [format.HEADER_BYTES], []
    offset = format.HEADER.size
    for key, value in ops:
        record = helpers.record(key, value)
        expected.append((offset, key, format.DELETED if value is None else len(value),
                         offset + len(record)))
        parts.append(record)
        offset += len(record)
    return b''.join(parts), expected


def scanned(buf, offset, end):
    return [(at, bytes(key), size) for at, key, size in format.scan(buf, offset, end)]


# -- golden bytes -------------------------------------------------------------------


def test_header_golden_bytes():
    assert format.HEADER_BYTES == HEADER_GOLDEN
    assert format.HEADER.size == len(HEADER_GOLDEN)
    assert format.HEADER.unpack(HEADER_GOLDEN) == (b'SEMI', 1, 1)
    assert (format.MAGIC, format.VERSION) == (b'SEMI', (1, 1))


def test_put_record_golden_bytes():
    assert format.encode_put(b'key', b'value') == PUT_GOLDEN
    head = PUT_GOLDEN[:format.RECORD_HEAD.size]
    assert format.RECORD_HEAD.unpack(head) == (3, 5)
    crc = PUT_GOLDEN[-format.CHECKSUM.size:]
    assert format.CHECKSUM.unpack(crc) == (zlib.crc32(b'keyvalue'),)
    assert format.record_size(3, 5) == len(PUT_GOLDEN)


def test_delete_record_golden_bytes():
    assert format.encode_delete(b'key') == DELETE_GOLDEN
    assert format.DELETED == -1
    head = DELETE_GOLDEN[:format.RECORD_HEAD.size]
    assert format.RECORD_HEAD.unpack(head) == (3, format.DELETED)
    crc = DELETE_GOLDEN[-format.CHECKSUM.size:]
    assert format.CHECKSUM.unpack(crc) == (zlib.crc32(b'key'),)
    assert format.record_size(3, format.DELETED) == len(DELETE_GOLDEN)


def test_empty_and_binary_record_golden_bytes():
    assert format.encode_put(b'', b'') == EMPTY_PUT_GOLDEN
    assert len(EMPTY_PUT_GOLDEN) == format.OVERHEAD
    assert format.encode_put(b'k2', b'\x00\xff') == BINARY_PUT_GOLDEN


def test_a_batch_of_puts_is_the_same_bytes_as_the_puts_one_by_one():
    start = 100
    blob, keys, locations = format.encode_puts(
        [(b'key', b'value'), (b'', b''), (b'k2', b'\x00\xff')], start, None)
    assert blob == PUT_GOLDEN + EMPTY_PUT_GOLDEN + BINARY_PUT_GOLDEN
    assert keys == [b'key', b'', b'k2']
    # Each location points at the value's bytes, as they lie in the file at *start*.
    file = bytes(start) + blob
    assert [file[loc >> 32:(loc >> 32) + (loc & 0xFFFFFFFF)] for loc in locations] == [
        b'value', b'', b'\x00\xff']
    assert [loc & 0xFFFFFFFF for loc in locations] == [5, 0, 2]


def test_a_batch_converts_only_the_pairs_that_are_not_bytes():
    seen = []

    def convert(key, value):
        seen.append((key, value))
        return key.encode(), bytes(value)

    blob, keys, _ = format.encode_puts([(b'key', b'value'), ('k2', bytearray(b'\x00\xff'))],
                                       0, convert)
    assert blob == PUT_GOLDEN + BINARY_PUT_GOLDEN
    assert seen == [('k2', bytearray(b'\x00\xff'))]


def test_a_batch_with_a_record_too_large_raises(monkeypatch):
    monkeypatch.setattr(format, 'MAX_SIZE', 4)
    with pytest.raises(format.RecordTooLarge, match='5 bytes is too large'):
        format.encode_puts([(b'k', b'v'), (b'k', b'12345')], 0, None)


def test_overhead_and_limits():
    assert format.OVERHEAD == format.RECORD_HEAD.size + format.CHECKSUM.size
    assert format.MAX_SIZE == 2 ** 31 - 1
    # The largest size the field holds; one more does not fit a signed 32-bit field.
    format.RECORD_HEAD.pack(format.MAX_SIZE, format.MAX_SIZE)
    with pytest.raises(struct.error):
        format.RECORD_HEAD.pack(format.MAX_SIZE + 1, 0)


def test_pad_can_start_no_record():
    pad = format.PAD_BYTE * format.OVERHEAD
    assert format.PAD_BYTE == b'\xff'
    assert format.RECORD_HEAD.unpack_from(pad) == (-1, -1)
    assert scanned(pad, 0, len(pad)) == []
    assert format.find_record(pad, 0, len(pad)) == -1


def test_file_written_by_semidbm_is_exactly_header_and_records(path):
    with semidbm.open(path, 'n') as db:
        db[b'key'] = b'value'
        db[b'k2'] = b'\x00\xff'
        db['é'] = 'v'
        del db[b'key']
    assert helpers.data_bytes(path) == (HEADER_GOLDEN + PUT_GOLDEN + BINARY_PUT_GOLDEN
                                        + TEXT_PUT_GOLDEN + DELETE_GOLDEN)


def test_new_database_file_is_the_header_alone(path):
    semidbm.open(path, 'c').close()
    assert helpers.data_bytes(path) == HEADER_GOLDEN


def test_update_and_clear_write_the_same_records_as_single_calls(path):
    with semidbm.open(path, 'n') as db:
        db.update({b'key': b'value', b'': b''})
        db.clear()
    assert helpers.data_bytes(path) == (HEADER_GOLDEN + PUT_GOLDEN + EMPTY_PUT_GOLDEN
                                        + DELETE_GOLDEN
                                        + b'\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00')


def test_compacted_file_is_the_live_records_in_index_order(path):
    with semidbm.open(path, 'n') as db:
        db[b'key'] = b'old value'
        db[b'k2'] = b'\x00\xff'
        db[b'gone'] = b'x'
        db[b'key'] = b'value'      # an overwrite keeps the key's place
        del db[b'gone']
        db.compact()
        # While open, pad follows the records (cut at close).
        live = HEADER_GOLDEN + PUT_GOLDEN + BINARY_PUT_GOLDEN
        assert helpers.data_bytes(path).rstrip(format.PAD_BYTE) == live
    assert helpers.data_bytes(path) == HEADER_GOLDEN + PUT_GOLDEN + BINARY_PUT_GOLDEN


# -- check_header -------------------------------------------------------------------


def test_check_header_accepts_format_1_1_and_newer_minor_versions():
    assert format.check_header(HEADER_GOLDEN, PATH) == (1, 1)
    assert format.check_header(HEADER_GOLDEN + PUT_GOLDEN, PATH) == (1, 1)
    assert format.check_header(b'SEMI\x00\x01\x00\x09', PATH) == (1, 9)


@pytest.mark.parametrize('length', range(len(HEADER_GOLDEN)))
def test_check_header_refuses_a_truncated_header(length):
    with pytest.raises(ValueError, match='too short') as info:
        format.check_header(HEADER_GOLDEN[:length], PATH)
    assert PATH in str(info.value)
    assert f'({length} bytes' in str(info.value)


@pytest.mark.parametrize('magic', [b'SEMJ', b'semi', b'\x00\x00\x00\x00', b'\xff' * 4])
def test_check_header_refuses_bad_magic(magic):
    with pytest.raises(ValueError, match='not a semidbm data file') as info:
        format.check_header(magic + HEADER_GOLDEN[len(magic):], PATH)
    assert PATH in str(info.value)
    assert repr(magic) in str(info.value)


@pytest.mark.parametrize('major', [0, 2, 0xffff])
def test_check_header_refuses_an_unknown_major_version(major):
    header = format.HEADER.pack(b'SEMI', major, 1)
    with pytest.raises(ValueError, match='not supported') as info:
        format.check_header(header, PATH)
    assert PATH in str(info.value)
    assert f'{major}.1' in str(info.value)


@given(st.binary(max_size=16))
def test_check_header_on_garbage_returns_the_version_or_raises_valueerror(buf):
    try:
        version = format.check_header(buf, PATH)
    except ValueError as exc:
        assert PATH in str(exc)
        assert not (len(buf) >= format.HEADER.size and buf[:4] == b'SEMI'
                    and buf[4:6] == b'\x00\x01')
    else:
        assert buf[:4] == b'SEMI' and version == format.HEADER.unpack_from(buf)[1:]
        assert version[0] == 1


# -- round trips --------------------------------------------------------------------


@given(operations)
def test_scan_returns_every_record_encoded(ops):
    buf, expected = encode(ops)
    records = scanned(buf, format.HEADER.size, len(buf))
    assert records == [(offset, key, size) for offset, key, size, _ in expected]
    for (key, value), (offset, _, size, end) in zip(ops, expected):
        assert format.record_size(len(key), size) == end - offset
        assert format.checksum_ok(buf, offset, len(key), size)
        assert format.valid_record_at(buf, offset, len(buf))
        if value is not None:
            start = offset + format.RECORD_HEAD.size + len(key)
            assert buf[start:start + size] == value


@given(operations, st.integers(min_value=1, max_value=3 * format.OVERHEAD))
def test_scan_stops_at_the_pad(ops, pad):
    buf, expected = encode(ops)
    padded = buf + format.PAD_BYTE * pad
    assert scanned(padded, format.HEADER.size, len(padded)) == scanned(
        buf, format.HEADER.size, len(buf))
    assert format.content_end(padded, format.HEADER.size, len(padded)) == (
        format.HEADER.size + len(buf[format.HEADER.size:].rstrip(format.PAD_BYTE)))


@given(operations)
def test_scan_of_a_truncated_buffer_yields_the_whole_records_only(ops):
    buf, expected = encode(ops)
    for cut in range(format.HEADER.size, len(buf) + 1):
        whole = [(offset, key, size) for offset, key, size, end in expected if end <= cut]
        assert scanned(buf, format.HEADER.size, cut) == whole, cut
        assert scanned(buf[:cut], format.HEADER.size, cut) == whole, cut


@given(operations)
def test_find_record_finds_the_first_record(ops):
    """The first that is not filler: a record of an empty key and value is twelve
    zero bytes, which a block lost to a power cut also is."""
    buf, expected = encode(ops)
    real = [at for at, key, size, _ in expected
            if not format.filler(buf, at, len(key), size)]
    first = real[0] if real else -1
    assert format.find_record(buf, format.HEADER.size, len(buf)) == first
    # Past the first byte of a record, the next found is a later record (or a record
    # hidden inside a key or value, which is still a whole valid record).
    if real:
        found = format.find_record(buf, first + 1, len(buf))
        assert found == -1 or format.valid_record_at(buf, found, len(buf))


@pytest.mark.parametrize('source', ['bytes', 'bytearray', 'memoryview', 'mmap'])
def test_scan_reads_any_byte_source_alike(source, tmp_path):
    buf, expected = encode([(b'a', b'1'), (b'bb', None), (b'', b'\xff' * 3)])
    path = tmp_path / 'f'
    path.write_bytes(buf)
    with open(path, 'rb') as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            sources = {'bytes': buf, 'bytearray': bytearray(buf),
                       'memoryview': memoryview(buf), 'mmap': mapped}
            assert scanned(sources[source], format.HEADER.size, len(buf)) == [
                (offset, key, size) for offset, key, size, _ in expected]
        finally:
            mapped.close()


# -- truncated and garbage input ----------------------------------------------------


def test_scan_stops_at_impossible_sizes():
    good = format.encode_put(b'a', b'1')
    for head in [(-2, 0), (0, -2), (-1, 0), (-(2 ** 31), 5)]:
        bad = format.RECORD_HEAD.pack(*head) + b'\x00' * format.OVERHEAD
        buf = good + bad + good
        assert scanned(buf, 0, len(buf)) == [(0, b'a', 1)], head


def test_scan_stops_at_a_size_larger_than_the_rest():
    good = format.encode_put(b'a', b'1')
    for head in [(0, format.MAX_SIZE), (format.MAX_SIZE, 0), (1, 5)]:
        buf = good + format.RECORD_HEAD.pack(*head) + b'a1234'
        assert scanned(buf, 0, len(buf)) == [(0, b'a', 1)], head


def test_scan_respects_its_start_offset():
    buf, expected = encode([(b'a', b'1'), (b'b', b'22')])
    second = expected[1][0]
    assert scanned(buf, second, len(buf)) == [(second, b'b', 2)]
    assert scanned(buf, len(buf), len(buf)) == []


@settings(max_examples=300)
@given(st.binary(max_size=80), st.integers(min_value=0, max_value=8))
def test_scan_of_garbage_yields_a_chain_inside_the_buffer(buf, offset):
    offset = min(offset, len(buf))
    at = offset
    for record_offset, key, size in format.scan(buf, offset, len(buf)):
        assert record_offset == at
        assert size >= format.DELETED
        assert buf[record_offset + format.RECORD_HEAD.size:][:len(key)] == key
        at += format.record_size(len(key), size)
        assert at <= len(buf)


@settings(max_examples=300)
@given(st.binary(max_size=60), st.binary(max_size=60), st.integers(0, 3))
def test_find_record_matches_a_try_at_every_offset(prefix, suffix, which):
    records = [b'', format.encode_put(b'k', b'v'), format.encode_delete(b'key'),
               format.encode_put(b'', b'\x00')]
    buf = prefix + records[which] + suffix
    expected = next((at for at in range(len(buf))
                     if format.valid_record_at(buf, at, len(buf))
                     and not format.filler(buf, at, *format.RECORD_HEAD.unpack_from(buf, at))),
                    -1)
    assert format.find_record(buf, 0, len(buf)) == expected
    if which:
        assert expected != -1 and expected <= len(prefix)


def test_find_record_takes_zeros_and_pad_for_no_record():
    zeros = bytes(1 << 16)
    pad_made = format.RECORD_HEAD.pack(2, 2) + b'\xff' * 8
    assert format.filler(pad_made, 0, 2, 2) and format.valid_record_at(pad_made, 0, 16)
    for blob in (zeros, pad_made + b'\xff' * 100, zeros + pad_made):
        assert format.find_record(blob, 0, len(blob)) == -1
    record = format.encode_put(b'', b'\x00')  # starts with seven zero bytes
    assert format.find_record(zeros + record, 0, len(zeros) + len(record)) == len(zeros)


def test_find_record_skips_garbage_and_damaged_records():
    garbage = b'\x80' * 20       # negative key sizes at every offset
    record = format.encode_put(b'key', b'value')
    assert format.find_record(garbage + record, 0, len(garbage + record)) == len(garbage)
    damaged = bytearray(record)
    damaged[-1] ^= 1
    assert format.find_record(garbage + damaged, 0, len(garbage + damaged)) == -1
    assert not format.valid_record_at(damaged, 0, len(damaged))


def test_find_record_never_reads_past_end():
    record = format.encode_put(b'key', b'value')
    for end in range(len(record)):
        assert format.find_record(record, 0, end) == -1, end
        assert not format.valid_record_at(record, 0, end)
    assert format.find_record(record, 0, len(record)) == 0


def test_find_record_starts_before_bound():
    record = format.encode_put(b'key', b'value')
    buf = b'\x80' * 3 + record
    assert format.find_record(buf, 0, len(buf), starts_before=3) == -1
    assert format.find_record(buf, 0, len(buf), starts_before=4) == 3


def test_find_record_finds_a_record_ending_in_pad_bytes():
    # The checksum of this record ends in 0xff: cut at the content end, it is lost.
    key = next(b'k%d' % i for i in range(10 ** 4) if zlib.crc32(b'k%dv' % i) & 0xff == 0xff)
    record = format.encode_put(key, b'v')
    buf = b'\x80' * 5 + record + format.PAD_BYTE * 9
    content = format.content_end(buf, 0, len(buf))
    assert content < 5 + len(record)
    assert format.find_record(buf, 0, content) == -1
    assert format.find_record(buf, 0, len(buf), starts_before=content) == 5


def test_valid_record_at_refuses_impossible_sizes():
    for head in [(-1, 0), (0, -2)]:
        buf = format.RECORD_HEAD.pack(*head) + b'\x00' * format.OVERHEAD
        assert not format.valid_record_at(buf, 0, len(buf))


# -- content_end --------------------------------------------------------------------


def test_content_end_without_pad_is_the_end():
    buf = HEADER_GOLDEN + PUT_GOLDEN
    assert format.content_end(buf, 0, len(buf)) == len(buf)
    assert format.content_end(buf, 3, 3) == 3


def test_content_end_of_only_pad_is_the_start():
    pad = format.PAD_BYTE * 100
    assert format.content_end(pad, 10, len(pad)) == 10
    assert format.content_end(pad, 0, len(pad)) == 0


@pytest.mark.parametrize('pad', [1, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 3 * (1 << 16) + 5])
def test_content_end_across_blocks(pad):
    buf = HEADER_GOLDEN + PUT_GOLDEN + format.PAD_BYTE * pad
    assert format.content_end(buf, 0, len(buf)) == len(HEADER_GOLDEN + PUT_GOLDEN)
    # Pad bytes inside the content do not end it.
    buf = HEADER_GOLDEN + format.PAD_BYTE * pad + PUT_GOLDEN + format.PAD_BYTE * 2
    assert format.content_end(buf, 0, len(buf)) == len(buf) - 2


def test_content_end_never_goes_below_offset():
    buf = b'abc' + format.PAD_BYTE * 10
    assert format.content_end(buf, 5, len(buf)) == 5
    assert format.content_end(buf, 2, len(buf)) == 3


@given(st.binary(max_size=50).map(lambda b: b.replace(b'\x00', b'\xff')),
       st.integers(0, 50), st.integers(0, 50))
def test_content_end_matches_rstrip(buf, offset, end):
    end = min(end, len(buf))
    offset = min(offset, end)
    assert format.content_end(buf, offset, end) == (
        offset + len(buf[offset:end].rstrip(format.PAD_BYTE)))
