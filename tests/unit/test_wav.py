"""media.wav: walking RIFF chunks to `data`, building PCM16 and μ-law WAVs, stereo interleave."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.wav import WavError, interleave_stereo, pcm16_wav, strip_wav_header, ulaw_wav

pytestmark = pytest.mark.codec


def u16(n: int) -> bytes:
    return n.to_bytes(2, "little")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def chunk(chunk_id: bytes, payload: bytes, size: int | None = None) -> bytes:
    pad = b"\x00" if len(payload) % 2 else b""
    return chunk_id + u32(len(payload) if size is None else size) + payload + pad


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + u32(len(body)) + body


PCM_FMT_16 = u16(1) + u16(1) + u32(8000) + u32(16000) + u16(2) + u16(16)
ULAW_FMT_18 = u16(7) + u16(1) + u32(8000) + u32(8000) + u16(1) + u16(8) + u16(0)


def pcm_samples(samples: list[int]) -> bytes:
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


# --- strip_wav_header ----------------------------------------------------------------------------


@given(st.binary(max_size=2000))
def test_strip_ulaw_wav_round_trip(ulaw: bytes) -> None:
    assert strip_wav_header(ulaw_wav(ulaw)) == ulaw


@given(st.binary(max_size=1000).map(lambda b: b[: len(b) // 2 * 2]))
def test_strip_pcm16_wav_round_trip(pcm16: bytes) -> None:
    assert strip_wav_header(pcm16_wav(pcm16)) == pcm16


def test_plain_44_byte_header() -> None:
    wav = riff(chunk(b"fmt ", PCM_FMT_16), chunk(b"data", b"\x01\x02\x03\x04"))
    assert len(wav) == 44 + 4
    assert strip_wav_header(wav) == b"\x01\x02\x03\x04"


def test_ulaw_fmt_18_and_fact_chunk() -> None:
    wav = riff(chunk(b"fmt ", ULAW_FMT_18), chunk(b"fact", u32(3)), chunk(b"data", b"\x10\x20\x30"))
    assert strip_wav_header(wav) == b"\x10\x20\x30"


def test_list_chunk_before_data() -> None:
    info = b"INFO" + chunk(b"ISFT", b"Lavf58.76.100\x00")
    wav = riff(chunk(b"fmt ", PCM_FMT_16), chunk(b"LIST", info), chunk(b"data", b"\xaa\xbb"))
    assert strip_wav_header(wav) == b"\xaa\xbb"


def test_odd_sized_chunk_is_followed_by_a_pad_byte() -> None:
    wav = riff(chunk(b"fmt ", PCM_FMT_16), chunk(b"junk", b"abc"), chunk(b"data", b"\x01\x02"))
    assert b"abc\x00data" in wav
    assert strip_wav_header(wav) == b"\x01\x02"


def test_odd_sized_data_chunk_pad_is_not_payload() -> None:
    wav = riff(chunk(b"fmt ", ULAW_FMT_18), chunk(b"data", b"\x01\x02\x03"), chunk(b"LIST", b"INFO"))
    assert strip_wav_header(wav) == b"\x01\x02\x03"


def test_streaming_size_0xffffffff_runs_to_end() -> None:
    wav = riff(chunk(b"fmt ", PCM_FMT_16)) + b"data" + u32(0xFFFFFFFF) + b"\x05\x06\x07\x08"
    assert strip_wav_header(wav) == b"\x05\x06\x07\x08"


def test_data_size_overrunning_the_file_is_clamped() -> None:
    wav = riff(chunk(b"fmt ", PCM_FMT_16)) + b"data" + u32(1000) + b"\x05\x06"
    assert strip_wav_header(wav) == b"\x05\x06"


def test_empty_data_chunk() -> None:
    assert strip_wav_header(ulaw_wav(b"")) == b""
    assert strip_wav_header(riff(chunk(b"fmt ", PCM_FMT_16)) + b"data" + u32(0)) == b""


def test_non_riff_passes_through_unchanged() -> None:
    for raw in (b"", b"\xff" * 160, b"RIF", b"riff....WAVE", b"\x00RIFF"):
        assert strip_wav_header(raw) == raw


@pytest.mark.parametrize(
    "garbled",
    [
        b"RIFF",
        b"RIFF\x10\x00\x00\x00WAV",
        b"RIFF\x10\x00\x00\x00AVI LIST",
        riff(chunk(b"fmt ", PCM_FMT_16)),  # no data chunk at all
        riff(chunk(b"fmt ", PCM_FMT_16))[:30],  # cut inside fmt
        riff(chunk(b"fmt ", PCM_FMT_16)) + b"dat",  # cut inside the data chunk header
        riff(chunk(b"fmt ", PCM_FMT_16, size=5000), chunk(b"data", b"\x01\x02")),  # fmt size overruns
    ],
)
def test_truncated_or_garbled_riff_raises(garbled: bytes) -> None:
    with pytest.raises(WavError):
        strip_wav_header(garbled)


def test_wav_error_is_a_value_error() -> None:
    assert issubclass(WavError, ValueError)


@given(
    payload=st.binary(max_size=300),
    extra=st.lists(st.tuples(st.sampled_from([b"LIST", b"fact", b"junk", b"bext"]), st.binary(max_size=40))),
)
def test_any_chunks_before_data_are_skipped(payload: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    chunks = [
        chunk(b"fmt ", ULAW_FMT_18),
        *(chunk(cid, body) for cid, body in extra),
        chunk(b"data", payload),
    ]
    assert strip_wav_header(riff(*chunks)) == payload


# --- building WAVs -------------------------------------------------------------------------------


def test_pcm16_wav_header_fields() -> None:
    wav = pcm16_wav(pcm_samples([1, -1, 2]), sample_rate=16000)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert int.from_bytes(wav[4:8], "little") == len(wav) - 8
    assert wav[12:16] == b"fmt "
    assert int.from_bytes(wav[20:22], "little") == 1  # PCM
    assert int.from_bytes(wav[22:24], "little") == 1  # mono
    assert int.from_bytes(wav[24:28], "little") == 16000
    assert int.from_bytes(wav[34:36], "little") == 16  # bits per sample
    assert wav[36:40] == b"data" and int.from_bytes(wav[40:44], "little") == 6


def test_pcm16_wav_drops_partial_frame() -> None:
    assert strip_wav_header(pcm16_wav(b"\x01\x02\x03")) == b"\x01\x02"
    stereo = pcm16_wav(b"\x01\x02\x03\x04\x05\x06", channels=2)
    assert strip_wav_header(stereo) == b"\x01\x02\x03\x04"
    assert int.from_bytes(stereo[22:24], "little") == 2


def test_ulaw_wav_has_google_tts_shape() -> None:
    wav = ulaw_wav(b"\xff\x7f\x00", sample_rate=8000)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert int.from_bytes(wav[4:8], "little") == len(wav) - 8
    assert wav[12:16] == b"fmt " and int.from_bytes(wav[16:20], "little") == 18
    assert wav[20:38] == ULAW_FMT_18
    assert wav[38:42] == b"fact" and int.from_bytes(wav[42:46], "little") == 4
    assert int.from_bytes(wav[46:50], "little") == 3  # samples
    assert wav[50:54] == b"data" and int.from_bytes(wav[54:58], "little") == 3
    assert wav[58:] == b"\xff\x7f\x00\x00"  # odd payload gets a pad byte
    assert len(wav) % 2 == 0


def test_ulaw_wav_sample_rate_is_written() -> None:
    wav = ulaw_wav(b"\xff" * 4, sample_rate=16000)
    assert int.from_bytes(wav[24:28], "little") == 16000
    assert int.from_bytes(wav[28:32], "little") == 16000  # one byte per sample


def test_builders_reject_bad_shapes() -> None:
    with pytest.raises(ValueError):
        pcm16_wav(b"", sample_rate=0)
    with pytest.raises(ValueError):
        pcm16_wav(b"", channels=0)
    with pytest.raises(ValueError):
        ulaw_wav(b"", sample_rate=0)


# --- interleave_stereo ---------------------------------------------------------------------------


def test_interleave_stereo_alternates_samples() -> None:
    out = interleave_stereo(pcm_samples([1, 2, 3]), pcm_samples([-1, -2, -3]))
    assert out == pcm_samples([1, -1, 2, -2, 3, -3])


def test_interleave_stereo_pads_shorter_side_with_silence() -> None:
    assert interleave_stereo(pcm_samples([1, 2, 3]), pcm_samples([9])) == pcm_samples([1, 9, 2, 0, 3, 0])
    assert interleave_stereo(b"", pcm_samples([5, 6])) == pcm_samples([0, 5, 0, 6])
    assert interleave_stereo(b"", b"") == b""


def test_interleave_stereo_drops_odd_bytes() -> None:
    assert interleave_stereo(pcm_samples([1]) + b"\x07", b"\x07") == pcm_samples([1, 0])


@given(left=st.binary(max_size=200), right=st.binary(max_size=200))
def test_interleave_stereo_splits_back(left: bytes, right: bytes) -> None:
    left, right = left[: len(left) // 2 * 2], right[: len(right) // 2 * 2]
    out = interleave_stereo(left, right)
    n = max(len(left), len(right)) // 2
    assert len(out) == 4 * n
    lefts = b"".join(out[i : i + 2] for i in range(0, len(out), 4))
    rights = b"".join(out[i + 2 : i + 4] for i in range(0, len(out), 4))
    assert lefts == left + bytes(2 * n - len(left))
    assert rights == right + bytes(2 * n - len(right))
