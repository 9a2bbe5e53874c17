import gzip
import os

import pytest
from conftest import SHARED_DATA

from nucel.tokenization import encode_sequence, read_fasta
from nucel.tokenization.fasta import BLOCK_BYTES, FastaRecord, scan_fasta

GENOMES = os.path.join(SHARED_DATA, "genomes")


def write(path, text, compress=False):
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return str(path)


@pytest.mark.parametrize("compress", [False, True])
def test_multi_record_crlf_and_case(tmp_path, compress):
    path = write(tmp_path / ("x.fa.gz" if compress else "x.fa"),
                 ">chr1 first one\r\nACGTacgt\r\nNNRY\r\n>chr2\nGG\nTT", compress)
    assert list(read_fasta(path)) == [("chr1", "ACGTacgtNNRY"), ("chr2", "GGTT")]


def test_records_longer_than_a_block(tmp_path):
    line = "ACGT" * 15 + "\n"
    body = line * (2 * BLOCK_BYTES // len(line) + 7)
    path = write(tmp_path / "big.fa", ">a\n" + body + ">b\nAC\n")
    records = list(read_fasta(path))
    assert [name for name, _ in records] == ["a", "b"]
    assert records[0][1] == body.replace("\n", "") and records[1][1] == "AC"


@pytest.mark.parametrize("text, line, message", [
    (">chr1\nACGT\nACXT\n", 3, "invalid character 'X' in record 'chr1'"),
    (">chr1\nACGT\n>chr2\nAC-T\n", 4, "invalid character '-' in record 'chr2'"),
    ("ACGT\n>chr1\nACGT\n", 1, "sequence before the first '>' header"),
    (">\nACGT\n", 1, "header without a record name"),
    (">chr1\r\nAC GT\r\nAC>T\r\n", 3, "invalid character '>' in record 'chr1'"),  # '>' inside a line
    (">chr1\nACGT\n\n>chr2\nAAAA\nAAAA\nAA\xe9A\n", 7, "invalid byte 0xc3 in record 'chr2'"),
])
def test_bad_content_names_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path / "bad.fa", text)
    with pytest.raises(ValueError, match=rf"bad\.fa:{line}: .*{message}"):
        list(read_fasta(path))


@pytest.mark.parametrize("text", ["", "\n\n", "just some text\n"])
def test_file_without_header(tmp_path, text):
    with pytest.raises(ValueError, match=r"empty\.fa(:1)?: .*(no '>' header|before the first '>' header)"):
        list(read_fasta(write(tmp_path / "empty.fa", text)))


def test_truncated_gzip(tmp_path):
    data = gzip.compress((">chr1\n" + "ACGT" * 50_000 + "\n").encode())
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.fa\.gz:\d+: truncated or corrupt gzip stream"):
        list(read_fasta(str(path)))


def test_empty_records_are_reported_not_skipped(tmp_path):
    path = write(tmp_path / "e.fa", ">a\n>b\nACGT\n>c\n")
    with pytest.warns(UserWarning) as caught:
        records = list(read_fasta(path))
    assert records == [("a", ""), ("b", "ACGT"), ("c", "")]
    messages = [str(w.message) for w in caught]
    assert any("e.fa:1: record 'a' is empty" in m for m in messages)
    assert any("e.fa:4: record 'c' is empty" in m for m in messages)


def test_soft_masked_human_slice_bgzip():
    records = list(read_fasta(os.path.join(GENOMES, "hg38_chr2_1-2333275.fa.gz")))
    assert [name for name, _ in records] == ["chr2"]
    sequence = records[0][1]
    assert len(sequence) == 2_333_275
    assert sum(ch.islower() for ch in sequence) == 831_507  # soft-masked repeats, as documented
    assert set(sequence[:10_000]) == {"N"}


def test_plant_slice_has_iupac_codes():
    records = list(read_fasta(os.path.join(GENOMES, "athaliana_first1pct_per_chr.fa.gz")))
    assert sum(len(s) for _, s in records) == 1_196_674
    iupac = sum(s.count(code) for _, s in records for code in "YKS")
    assert iupac == 5


def test_concatenated_gzip_members_and_trailing_garbage(tmp_path):
    path = tmp_path / "members.fa.gz"
    path.write_bytes(gzip.compress(b">a\nAC\nG") + gzip.compress(b"T\n>b\nNN\n"))
    assert list(read_fasta(str(path))) == [("a", "ACGT"), ("b", "NN")]
    path.write_bytes(path.read_bytes() + b"not gzip")
    with pytest.raises(ValueError, match=r"members\.fa\.gz:\d+: truncated or corrupt gzip stream"):
        list(read_fasta(str(path)))


@pytest.mark.parametrize("name", ["hg38_chr2_1-2333275.fa.gz", "athaliana_first1pct_per_chr.fa.gz"])
def test_encoded_scan_equals_encoding_the_text(name):
    path = os.path.join(GENOMES, name)
    encoded, names = {}, []
    for item in scan_fasta(path, encode=True):
        if isinstance(item, FastaRecord):
            names.append(item.name)
            encoded[item.name] = []
        else:
            encoded[names[-1]].append(item)
    for record, sequence in read_fasta(path):
        assert b"".join(encoded[record]) == encode_sequence(sequence).tobytes()
