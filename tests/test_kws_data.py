"""The synthetic spoken-keyword set: its MFCC front end against references computed here, and
the labels, shapes and dtypes of the set (a handful of espeak-ng clips; skipped without espeak-ng)."""
import io
import wave

import numpy as np
import pytest

from tvm_mixq import kws_data
from tvm_mixq.errors import InputDataError

needs_espeak = pytest.mark.skipif(not kws_data.espeak_available(),
                                  reason="espeak-ng not installed (Debian package espeak-ng)")


def reference_signal() -> np.ndarray:
    """1 s at 16 kHz: a 440 Hz tone, a chirp from 300 Hz, and a 2.5 kHz tone in the second half."""
    t = np.arange(16000) / 16000.0
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * (300 + 1000 * t) * t)
            + 0.2 * np.sin(2 * np.pi * 2500 * t) * (t >= 0.5))


def direct_mfcc_frame(x: np.ndarray, frame: int) -> np.ndarray:
    """One frame's 10 MFCCs by the defining sums: DFT of the Hann-windowed frame zero-padded to
    512, triangular mel bands evaluated band by band, natural log, DCT-II."""
    x = x / x.max()
    n = np.arange(480)
    seg = x[320 * frame:320 * frame + 480] * np.sin(np.pi * n / 480) ** 2  # periodic Hann
    k = np.arange(257)[:, None]
    mag = np.hypot(np.cos(2 * np.pi * k * n / 512) @ seg, np.sin(2 * np.pi * k * n / 512) @ seg)

    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    edges = np.linspace(mel(20.0), mel(4000.0), 42)
    bands = np.zeros(40)
    for m in range(40):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for b in range(1, 257):
            fm = mel(b * 8000.0 / 256)
            if lo < fm <= mid:
                bands[m] += (fm - lo) / (mid - lo) * mag[b]
            elif mid < fm < hi:
                bands[m] += (hi - fm) / (hi - mid) * mag[b]
    log_mel = np.log(bands + 1e-6)
    return np.array([np.sqrt(2.0 / 40) * sum(log_mel[j] * np.cos(np.pi * c * (j + 0.5) / 40) for j in range(40))
                     for c in range(10)])


def test_front_end_matches_direct_evaluation():
    x = reference_signal()
    feats = kws_data.mfcc(x)
    assert feats.shape == (1, 49, 10, 1) and feats.dtype == np.float32
    for frame in (0, 17, 48):
        np.testing.assert_allclose(feats[0, frame, :, 0], direct_mfcc_frame(x, frame), atol=2e-4)


# TensorFlow 2.21 on reference_signal() through mlcommons/tiny get_dataset.py's mfcc pipeline:
# w = x / reduce_max(x); stft(w, 480, 320, fft_length=None, window_fn=hann_window); abs;
# tensordot with linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 4000.0); log(. + 1e-6);
# mfccs_from_log_mel_spectrograms(.)[..., :10]. Frames 24 and 48 (frame 0 is quiet, where TF's
# float32 differs from float64 by up to 0.01).
TF_GOLDEN = {
    24: [2.6837, -3.7891, -1.8241, -0.5269, -3.7196, -2.4995, -3.5613, 4.0146, 4.2047, -0.1229],
    48: [-24.1445, 3.6466, 2.8549, -0.2863, -17.6647, 3.7088, -4.4469, 1.1131, 6.6238, -2.1394],
}


def test_front_end_matches_tensorflow_golden():
    feats = kws_data.mfcc(reference_signal())[0, :, :, 0]
    for frame, expected in TF_GOLDEN.items():
        np.testing.assert_allclose(feats[frame], expected, atol=2e-3)


def test_front_end_pads_and_normalises():
    x = reference_signal()[:12000]
    padded = np.concatenate([x, np.zeros(4000)])
    np.testing.assert_array_equal(kws_data.mfcc(x), kws_data.mfcc(padded))
    np.testing.assert_allclose(kws_data.mfcc(3.5 * x), kws_data.mfcc(x), atol=1e-5)
    with pytest.raises(InputDataError, match="positive"):
        kws_data.mfcc(-np.abs(x))
    with pytest.raises(InputDataError):
        kws_data.mfcc(np.zeros(16001))


def test_quantize_truncates_toward_zero_and_clips():
    scale, zp = 0.5, 10
    x = np.array([0.0, 0.74, -0.74, -5.6, -100.0, 100.0], dtype=np.float32)
    # x / 0.5 + 10 = 10, 11.48, 8.52, -1.2, -190, 210
    np.testing.assert_array_equal(kws_data.quantize_features(x, scale, zp), [10, 11, 8, -1, -128, 127])
    assert kws_data.quantize_features(x).dtype == np.int8


def test_labels_in_model_output_order():
    assert kws_data.LABELS == ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes",
                               "silence", "unknown")
    assert not set(kws_data.UNKNOWN_WORDS) & set(kws_data.KEYWORDS)


def test_resample_keeps_a_tone_and_drops_what_is_above_8khz():
    t22 = np.arange(6615) / 22050.0  # 0.3 s
    y = kws_data.resample_22050_to_16000(np.sin(2 * np.pi * 1000 * t22))
    assert len(y) == 4800
    t16 = np.arange(4800) / 16000.0
    np.testing.assert_allclose(y[400:-400], np.sin(2 * np.pi * 1000 * t16)[400:-400], atol=2e-3)
    high = kws_data.resample_22050_to_16000(np.sin(2 * np.pi * 9500 * t22))
    assert np.sqrt(np.mean(high[400:-400] ** 2)) < 1e-2


def test_read_wav_bytes_ignores_a_bogus_streamed_length():
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(np.array([1, -2, 300, -32768], dtype="<i2").tobytes())
    data = bytearray(buf.getvalue())
    data[40:44] = (0x7FFFFFFF).to_bytes(4, "little")  # what a stream to stdout writes
    samples, rate = kws_data.read_wav_bytes(bytes(data))
    assert rate == 22050
    np.testing.assert_array_equal(samples, [1, -2, 300, -32768])
    with pytest.raises(InputDataError):
        kws_data.read_wav_bytes(b"not a wav file at all, not a wav file at all.")


def test_splits_are_deterministic_prefixes_with_disjoint_voices():
    a = kws_data.clip_specs("test", 3)
    assert a == kws_data.clip_specs("test", 3)
    assert [s.label for s in a] == [c for c in range(12) for _ in range(3)]
    longer = kws_data.clip_specs("test", 5)
    assert [s for s in longer if s.label == 4][:3] == [s for s in a if s.label == 4]
    variants = {split: {s.voice.split("+")[1] for s in kws_data.clip_specs(split, 30) if s.word}
                for split in ("calib", "test")}
    assert variants["calib"] and variants["test"] and not variants["calib"] & variants["test"]
    for s in a:
        assert (s.word == "") == (s.label == kws_data.SILENCE)
        if s.label == kws_data.UNKNOWN:
            assert s.word in kws_data.UNKNOWN_WORDS
        elif s.word:
            assert s.word == kws_data.LABELS[s.label]
    with pytest.raises(InputDataError, match="split"):
        kws_data.clip_specs("train")


def test_missing_espeak_gives_the_reason(monkeypatch):
    monkeypatch.setattr(kws_data, "espeak_available", lambda: False)
    with pytest.raises(InputDataError, match="espeak-ng"):
        kws_data.load_keywords("calib", per_class=1)


@needs_espeak
def test_keyword_set_shapes_labels_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXQ_BUILD_DIR", str(tmp_path))
    x, y = kws_data.load_keywords("calib", per_class=1)
    assert x.shape == (12, 49, 10, 1) and x.dtype == np.int8
    np.testing.assert_array_equal(y, np.arange(12))
    assert y.dtype == np.int64
    assert len(list((tmp_path / "kws").glob("calib-12-*.npz"))) == 1
    # a keyword clip has speech energy well above its noise floor: c0 varies along the clip
    f, _ = kws_data.keyword_features("calib", per_class=1)
    assert np.ptp(f[kws_data.LABELS.index("yes"), :, 0, 0]) > 20

    def no_synthesis(*args, **kwargs):
        raise AssertionError("the cached features should be read")

    monkeypatch.setattr(kws_data, "synthesize_split", no_synthesis)
    x2, y2 = kws_data.load_keywords("calib", per_class=1)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
