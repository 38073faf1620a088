"""media.codec: μ-law tables, rms, resampler state, framer. Also run under 3.13 with audioop-lts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.codec import (
    FRAME_MS,
    PCM_FRAME_BYTES,
    SAMPLE_RATE,
    ULAW_FRAME_BYTES,
    ULAW_SILENCE,
    Framer,
    Resampler,
    pcm16_to_ulaw,
    rms,
    ulaw_to_pcm16,
)

pytestmark = pytest.mark.codec


def pcm(samples: list[int]) -> bytes:
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


def samples_of(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "little", signed=True) for i in range(0, len(data), 2)]


def triangle(n: int, period: int = 40, peak: int = 12000) -> bytes:
    """A deterministic test tone (no math module: this file imports only the codec)."""
    half = period // 2
    out = []
    for i in range(n):
        phase = i % period
        level = phase if phase < half else period - phase
        out.append(peak * (2 * level - half) // half)
    return pcm(out)


# --- constants and μ-law -------------------------------------------------------------------------


def test_constants_describe_20ms_frames_at_8khz() -> None:
    assert SAMPLE_RATE == 8000
    assert FRAME_MS == 20
    assert ULAW_FRAME_BYTES == 160
    assert PCM_FRAME_BYTES == 320
    assert ULAW_SILENCE == b"\xff"


def test_zero_sample_encodes_to_ulaw_silence() -> None:
    assert pcm16_to_ulaw(b"\x00\x00") == b"\xff"
    assert ulaw_to_pcm16(b"\xff") == b"\x00\x00"


def test_ulaw_frame_decodes_to_pcm_frame() -> None:
    assert len(ulaw_to_pcm16(b"\x55" * ULAW_FRAME_BYTES)) == PCM_FRAME_BYTES
    assert len(pcm16_to_ulaw(bytes(PCM_FRAME_BYTES))) == ULAW_FRAME_BYTES


def test_ulaw_decode_encode_is_identity_except_negative_zero() -> None:
    for code in range(256):
        back = pcm16_to_ulaw(ulaw_to_pcm16(bytes([code])))
        # 0x7F is μ-law "negative zero": it decodes to 0, which encodes as 0xFF.
        assert back == (b"\xff" if code == 0x7F else bytes([code])), code


def test_ulaw_known_extremes() -> None:
    assert samples_of(ulaw_to_pcm16(b"\x00")) == [-32124]
    assert samples_of(ulaw_to_pcm16(b"\x80")) == [32124]
    assert pcm16_to_ulaw(pcm([32767, -32768])) == b"\x80\x00"


def test_pcm_round_trip_error_is_bounded_for_every_sample() -> None:
    every = list(range(-32768, 32768))
    back = samples_of(ulaw_to_pcm16(pcm16_to_ulaw(pcm(every))))
    for x, y in zip(every, back, strict=True):
        # μ-law keeps about 5 % relative precision (logarithmic steps) plus a small absolute step.
        assert abs(x - y) <= 8 + abs(x) // 32, (x, y)


def test_odd_trailing_byte_is_dropped() -> None:
    assert pcm16_to_ulaw(b"\x00\x00\x01") == b"\xff"
    assert pcm16_to_ulaw(b"\x01") == b""
    assert rms(pcm([1000, -1000]) + b"\x7f") == 1000


# --- rms, durations, silence ---------------------------------------------------------------------


def test_rms_known_values() -> None:
    assert rms(b"") == 0
    assert rms(bytes(PCM_FRAME_BYTES)) == 0
    assert rms(pcm([1000] * 160)) == 1000
    assert rms(pcm([3000, -3000] * 80)) == 3000
    assert rms(pcm([3, 4])) == 3  # sqrt(12.5), truncated


# --- Resampler -----------------------------------------------------------------------------------


def test_resampler_identity_returns_input() -> None:
    data = triangle(160)
    assert Resampler(8000, 8000).convert(data) == data


def test_resampler_rejects_bad_rates() -> None:
    with pytest.raises(ValueError):
        Resampler(0, 8000)
    with pytest.raises(ValueError):
        Resampler(8000, -1)


def test_resampler_carries_state_across_20ms_frames() -> None:
    signal = triangle(8000)  # one second at 8 kHz
    resampler = Resampler(8000, 16000)
    chunks = [resampler.convert(signal[i : i + PCM_FRAME_BYTES]) for i in range(0, len(signal), 320)]
    total = sum(len(c) for c in chunks) // 2
    one_shot = len(Resampler(8000, 16000).convert(signal)) // 2
    assert abs(total - 16000) <= 1
    assert abs(total - one_shot) <= 1
    # Per-chunk output length varies; never assume a fixed size.
    assert {len(c) for c in chunks} <= {638, 640, 642}


def test_resampler_24k_to_8k_frames() -> None:
    signal = triangle(24000, period=120)
    resampler = Resampler(24000, 8000)
    out = b"".join(resampler.convert(signal[i : i + 960]) for i in range(0, len(signal), 960))
    assert abs(len(out) // 2 - 8000) <= 1


@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_resampler_output_does_not_depend_on_chunking(cuts: list[int]) -> None:
    signal = triangle(1000, period=30)
    expected = Resampler(8000, 16000).convert(signal)
    resampler = Resampler(8000, 16000)
    bounds = [0, *sorted(cuts), len(signal)]  # includes odd cut points: half samples are carried
    out = b"".join(resampler.convert(signal[bounds[i] : bounds[i + 1]]) for i in range(len(bounds) - 1))
    assert out == expected


def test_resampler_reset_starts_afresh() -> None:
    signal = triangle(800)
    resampler = Resampler(8000, 16000)
    first = resampler.convert(signal)
    resampler.convert(triangle(123, period=7) + b"\x01")  # leave state and a stray byte behind
    resampler.reset()
    assert resampler.convert(signal) == first


def test_resampler_empty_input() -> None:
    assert Resampler(8000, 16000).convert(b"") == b""


# --- Framer --------------------------------------------------------------------------------------


def test_framer_emits_whole_frames_and_holds_remainder() -> None:
    framer = Framer()
    assert framer.push(b"\x01" * 100) == []
    assert framer.pending == 100
    frames = framer.push(b"\x02" * 300)
    assert frames == [b"\x01" * 100 + b"\x02" * 60, b"\x02" * 160]
    assert framer.pending == 80
    assert framer.flush() == b"\x02" * 80 + b"\xff" * 80
    assert framer.pending == 0
    assert framer.flush() is None


def test_framer_reset_drops_remainder() -> None:
    framer = Framer(frame_bytes=4, pad=b"\x00")
    framer.push(b"abcdef")
    framer.reset()
    assert framer.pending == 0
    assert framer.flush() is None
    assert framer.push(b"wxyz") == [b"wxyz"]


def test_framer_multibyte_pad_is_cut_to_fit() -> None:
    framer = Framer(frame_bytes=PCM_FRAME_BYTES, pad=b"\x00\x00")
    framer.push(b"\x01" * 10)
    assert framer.flush() == b"\x01" * 10 + bytes(310)
    framer = Framer(frame_bytes=5, pad=b"ab")
    framer.push(b"x")
    assert framer.flush() == b"xabab"


def test_framer_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Framer(frame_bytes=0)
    with pytest.raises(ValueError):
        Framer(pad=b"")


@given(
    chunks=st.lists(st.binary(max_size=500), max_size=20),
    frame_bytes=st.integers(min_value=1, max_value=400),
    pad=st.binary(min_size=1, max_size=3),
)
def test_framer_frames_plus_flush_reproduce_input(chunks: list[bytes], frame_bytes: int, pad: bytes) -> None:
    framer = Framer(frame_bytes=frame_bytes, pad=pad)
    frames: list[bytes] = []
    for chunk in chunks:
        frames.extend(framer.push(chunk))
        assert 0 <= framer.pending < frame_bytes
    data = b"".join(chunks)
    tail = framer.flush()
    assert all(len(f) == frame_bytes for f in frames)
    if len(data) % frame_bytes == 0:
        assert tail is None
    else:
        assert tail is not None and len(tail) == frame_bytes
        frames.append(tail)
    out = b"".join(frames)
    assert out[: len(data)] == data
    padding = out[len(data) :]
    assert padding == (pad * frame_bytes)[: len(padding)]
    assert framer.pending == 0


def test_framer_flush_can_pad_to_a_smaller_unit_than_its_frames() -> None:
    framer = Framer(800)
    assert framer.push(b"\x01" * 1000) == [b"\x01" * 800]
    assert framer.flush(pad_to=160) == b"\x01" * 200 + ULAW_SILENCE * 120
    assert framer.flush(pad_to=160) is None
    framer.push(b"\x02" * 320)
    assert framer.flush(pad_to=160) == b"\x02" * 320  # already whole 20 ms frames: no padding
