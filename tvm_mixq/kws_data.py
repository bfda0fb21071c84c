"""A labelled, synthetic spoken-keyword set for the MLPerf Tiny keyword-spotting model.

The MLPerf Tiny KWS model (``models/mlperf_tiny/kws_ref_model.tflite``, DS-CNN) was trained on
Google Speech Commands v2, which cannot be downloaded here. This module makes a stand-in: the ten
keywords, "unknown" words and "silence" spoken by Debian's ``espeak-ng`` speech synthesizer with
many voices, speeds and pitches, turned into exactly the features the model was trained on.

Front end (:func:`mfcc`), as in mlcommons/tiny ``benchmark/training/keyword_spotting``
(``get_dataset.py``: ``get_preprocess_audio_func``, feature type ``mfcc``; settings from
``kws_util.py`` and ``keras_model.prepare_model_settings``)
    1. 16 kHz mono clip of exactly 1 s (16,000 samples; shorter clips zero-padded at the end).
    2. Divided by its largest sample value (``wav / reduce_max(wav)``: the signed maximum, not the
       largest magnitude), so the level of a recording does not matter.
    3. STFT, ``tf.signal.stft`` defaults: 30 ms frames (480 samples), 20 ms stride (320 samples),
       no end padding, so 49 frames; periodic Hann window; FFT length 512 (the next power of two),
       257 bins; magnitude ``|X|`` (not power).
    4. 40 triangular mel filters from 20 Hz to 4,000 Hz (``tf.signal.linear_to_mel_weight_matrix``:
       HTK mel scale ``1127 ln(1 + f/700)``, triangles in the mel domain over the bin centre
       frequencies, DC bin unused, no area normalisation), applied to the magnitudes.
    5. ``ln(mel + 1e-6)``.
    6. DCT-II over the 40 bands scaled as ``tf.signal.mfccs_from_log_mel_spectrograms``:
       ``c_k = sqrt(2/40) * sum_n x_n cos(pi k (2n + 1) / 80)`` (no extra 1/sqrt(2) on ``c_0``);
       the first 10 coefficients. Result ``[49, 10]`` (frames x coefficients), no normalisation.
    7. int8 input of the quantized model (``eval_quantized_model.py``, ``make_bin_files.py``):
       ``int8(x / scale + zero_point)``, a cast that truncates toward zero, here also clipped to
       [-128, 127]; the model's input scale and zero point are 0.5847029 and 83.

Labels (tensorflow_datasets ``speech_commands``, the order of the model's 12 outputs)
    0 down, 1 go, 2 left, 3 no, 4 off, 5 on, 6 right, 7 stop, 8 up, 9 yes, 10 silence, 11 unknown.

Synthesis (:func:`clip_specs`, :func:`render_clip`)
    Every clip is drawn from a seeded generator: an English espeak-ng accent (``en-us``,
    ``en-gb``, Scottish, RP, Lancaster, West Midlands, Caribbean, New York) and a voice variant
    (formants and pitch range: ``m1``-``m8``, ``f1``-``f5``, Klatt and named variants), speed
    110-230 words per minute, pitch 20-80, amplitude 50-100 (above 100 some Klatt voices clip).
    The synthesizer's 22,050 Hz output is resampled to 16 kHz (band-limited, by FFT:
    :func:`resample_22050_to_16000`), its leading and trailing silence trimmed, and the word put
    at a random place in the 1 s clip over white or pink noise 25-60 dB below the word (a
    recording's noise floor). "unknown" clips are the auxiliary words of Speech Commands v2
    (backward, bed, ..., zero: what the model learnt as "unknown"). "silence" clips are white or
    pink noise, now and then with a weak mains hum: Speech Commands' silence clips are cut from its
    background-noise recordings (white and pink noise among them), and the peak normalisation of
    step 2 makes their level irrelevant. (Brown noise or a strong hum is classified "unknown" by
    the model: it did not see them as silence.)

    The ``calib`` and ``test`` splits use disjoint voice variants and different seeds, so no
    voice of the test split is seen in calibration. Features are cached per split in
    ``$MIXQ_BUILD_DIR/kws`` (default ``build/kws`` in the repository, which git ignores).

Everything runs offline: only ``espeak-ng`` (Debian package) and NumPy are needed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .errors import InputDataError

log = logging.getLogger(__name__)

# -- front end (mlcommons/tiny keyword_spotting, feature_type "mfcc") ---------------------------
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
WINDOW_SAMPLES = 480  # 30 ms
STRIDE_SAMPLES = 320  # 20 ms
FFT_LENGTH = 512
NUM_FRAMES = 1 + (CLIP_SAMPLES - WINDOW_SAMPLES) // STRIDE_SAMPLES  # 49
NUM_MEL_BINS = 40
MEL_LOW_HZ = 20.0
MEL_HIGH_HZ = 4000.0
LOG_OFFSET = 1e-6
NUM_MFCC = 10
#: Input quantization of ``models/mlperf_tiny/kws_ref_model.tflite``.
KWS_INPUT_SCALE = 0.5847029089927673
KWS_INPUT_ZERO_POINT = 83

#: The model's output classes, in order.
LABELS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence", "unknown")
KEYWORDS = LABELS[:10]
SILENCE = LABELS.index("silence")
UNKNOWN = LABELS.index("unknown")
#: Speech Commands v2 words outside the ten keywords: the model's "unknown" class.
UNKNOWN_WORDS = ("backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward", "four",
                 "happy", "house", "learn", "marvin", "nine", "one", "seven", "sheila", "six", "three",
                 "tree", "two", "visual", "wow", "zero")

# -- synthesis -----------------------------------------------------------------------------------
ESPEAK_RATE = 22050
#: English accents of espeak-ng (its ``gmw`` voices; the MBROLA ones need extra packages).
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc")
#: Voice variants of each split; disjoint, so the test voices are never seen in calibration.
VARIANTS = {
    "calib": ("m1", "m4", "m7", "f2", "f5", "klatt", "klatt4", "Andy", "linda", "paul"),
    "test": ("m2", "m3", "m5", "m6", "m8", "f1", "f3", "f4", "klatt2", "klatt3", "klatt6", "Annie",
             "david", "steph", "john", "max", "aunty", "edward"),
}
SPLIT_SEEDS = {"calib": 1_000_003, "test": 2_000_003}
DEFAULT_PER_CLASS = {"calib": 20, "test": 100}
#: Bump when the synthesis or the front end changes: it keys the cache.
FORMAT_VERSION = 1


def espeak_available() -> bool:
    """True when the ``espeak-ng`` program is on the PATH."""
    return shutil.which("espeak-ng") is not None


# -- front end -----------------------------------------------------------------------------------

def hann_window(n: int = WINDOW_SAMPLES) -> np.ndarray:
    """Periodic Hann window (``tf.signal.hann_window`` default): ``0.5 - 0.5 cos(2 pi i / n)``."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float64)


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, ``1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def mel_weight_matrix(num_mel_bins: int = NUM_MEL_BINS, num_spectrogram_bins: int = FFT_LENGTH // 2 + 1,
                      sample_rate: int = SAMPLE_RATE, low_hz: float = MEL_LOW_HZ,
                      high_hz: float = MEL_HIGH_HZ) -> np.ndarray:
    """``[num_spectrogram_bins, num_mel_bins]`` triangular filters, as
    ``tf.signal.linear_to_mel_weight_matrix``.

    Bin ``i`` has frequency ``i * (sample_rate / 2) / (num_spectrogram_bins - 1)``; band ``m`` is
    a triangle in mel between edges ``m`` and ``m + 2`` of ``num_mel_bins + 2`` edges spaced
    evenly in mel from ``low_hz`` to ``high_hz``, peak 1 at edge ``m + 1``. The DC bin has
    weight 0.
    """
    bin_mel = hz_to_mel(np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins))[:, None]
    edges = np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), num_mel_bins + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (centre - lower)
    falling = (upper - bin_mel) / (upper - centre)
    w = np.maximum(0.0, np.minimum(rising, falling))
    w[0, :] = 0.0
    return w


def dct_matrix(num_mel_bins: int = NUM_MEL_BINS, num_coefficients: int = NUM_MFCC) -> np.ndarray:
    """``[num_mel_bins, num_coefficients]``: the DCT-II of ``tf.signal.dct`` (type 2, no norm:
    ``2 sum_n x_n cos(pi k (2n+1) / 2N)``) times ``1 / sqrt(2 N)``, as
    ``tf.signal.mfccs_from_log_mel_spectrograms`` scales it."""
    n = np.arange(num_mel_bins)[:, None]
    k = np.arange(num_coefficients)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * num_mel_bins)) / np.sqrt(2.0 * num_mel_bins)


def normalize_peak(wav: np.ndarray) -> np.ndarray:
    """``wav / max(wav)`` per clip (the signed maximum), as the MLPerf pipeline scales its input.

    Raises
    ------
    InputDataError
        If a clip has no positive sample (the pipeline would divide by zero or flip its sign).
    """
    wav = np.asarray(wav, dtype=np.float64)
    peak = wav.max(axis=-1, keepdims=True)
    if np.any(peak <= 0):
        raise InputDataError("a clip has no positive sample: it cannot be peak-normalised")
    return wav / peak


def mfcc(wav: np.ndarray, normalize: bool = True) -> np.ndarray:
    """1 s clips at 16 kHz -> the model's float features.

    Parameters
    ----------
    wav:
        ``[N, L]`` or ``[L]`` samples, any scale; ``L <= 16000`` (zero-padded at the end to 16000).
    normalize:
        Divide each clip by its largest sample first (step 2 of the front end; what the model saw).

    Returns
    -------
    float32 ``[N, 49, 10, 1]`` MFCCs (frames x coefficients), the float model's input.
    """
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2 or wav.shape[1] > CLIP_SAMPLES:
        raise InputDataError(f"expected clips [N, <= {CLIP_SAMPLES}], got {list(wav.shape)}")
    if wav.shape[1] < CLIP_SAMPLES:
        wav = np.pad(wav, ((0, 0), (0, CLIP_SAMPLES - wav.shape[1])))
    if normalize:
        wav = normalize_peak(wav)
    starts = np.arange(NUM_FRAMES) * STRIDE_SAMPLES
    frames = wav[:, starts[:, None] + np.arange(WINDOW_SAMPLES)[None, :]] * hann_window()
    magnitude = np.abs(np.fft.rfft(frames, n=FFT_LENGTH, axis=-1))
    log_mel = np.log(magnitude @ mel_weight_matrix() + LOG_OFFSET)
    return (log_mel @ dct_matrix()).astype(np.float32)[..., None]


def quantize_features(x: np.ndarray, input_scale: float = KWS_INPUT_SCALE,
                      input_zero_point: int = KWS_INPUT_ZERO_POINT) -> np.ndarray:
    """Float features -> int8 model input as mlcommons/tiny does it: ``x / scale + zero_point``
    cast to int8 (truncation toward zero), clipped to [-128, 127] (their cast would wrap)."""
    if not input_scale > 0:
        raise InputDataError(f"input scale must be positive, got {input_scale}")
    v = np.asarray(x, dtype=np.float32) / np.float32(input_scale) + np.float32(input_zero_point)
    return np.clip(np.trunc(v), -128, 127).astype(np.int8)


# -- synthesis -----------------------------------------------------------------------------------

def resample_22050_to_16000(x: np.ndarray) -> np.ndarray:
    """Band-limited resampling 22,050 Hz -> 16,000 Hz (ratio 320/441) by FFT.

    The signal is zero-padded to a multiple of 441 samples (plus a margin, so the circular FFT
    does not wrap the end onto the start), its spectrum cut at 8 kHz (the Nyquist bin dropped) and
    transformed back at the new length; the padding is removed again.
    """
    x = np.asarray(x, dtype=np.float64)
    margin = 441
    length = -(-(len(x) + 2 * margin) // 441) * 441
    spectrum = np.fft.rfft(np.pad(x, (margin, length - len(x) - margin)))
    out_length = length * 320 // 441
    kept = spectrum[:out_length // 2 + 1].copy()
    if out_length % 2 == 0:
        kept[-1] = 0.0
    y = np.fft.irfft(kept, n=out_length) * (out_length / length)
    start = margin * 320 // 441
    return y[start:start + -(-len(x) * 320 // 441)]


def read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit mono WAV bytes (as ``espeak-ng --stdout`` writes them, whose header may give a bogus
    length) -> int16 samples and the sample rate."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InputDataError("not a WAV stream")
    pos, rate, channels, width = 12, None, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if cid == b"fmt ":
            channels = int.from_bytes(data[pos + 10:pos + 12], "little")
            rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            width = int.from_bytes(data[pos + 22:pos + 24], "little")
        elif cid == b"data":
            if rate is None or channels != 1 or width != 16:
                raise InputDataError("expected a 16-bit mono WAV stream")
            body = data[pos + 8:]
            body = body[:len(body) // 2 * 2]
            return np.frombuffer(body, dtype="<i2").astype(np.int16), rate
        pos += 8 + size + (size & 1)
    raise InputDataError("WAV stream has no data chunk")


def espeak(word: str, voice: str, speed: int, pitch: int, amplitude: int) -> np.ndarray:
    """``word`` spoken by espeak-ng: int16 samples at 22,050 Hz.

    Raises
    ------
    InputDataError
        If espeak-ng is missing or fails.
    """
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude),
           "-z", "--stdout", word]
    try:
        proc = subprocess.run(cmd, capture_output=True)
    except FileNotFoundError:
        raise InputDataError("espeak-ng not found: install the Debian package espeak-ng "
                             "(scripts/install_system_deps.sh)") from None
    if proc.returncode != 0:
        raise InputDataError(f"espeak-ng failed on {word!r} ({voice}): {proc.stderr.decode(errors='replace')[-200:]}")
    samples, rate = read_wav_bytes(proc.stdout)
    if rate != ESPEAK_RATE:
        raise InputDataError(f"espeak-ng wrote {rate} Hz, expected {ESPEAK_RATE} Hz")
    return samples


def espeak_version() -> str:
    """``espeak-ng --version`` (keys the cache); empty when espeak-ng is missing."""
    if not espeak_available():
        return ""
    proc = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True)
    return proc.stdout.strip()


@dataclass(frozen=True)
class ClipSpec:
    """How one clip is made: what is said, by which voice, where, over which noise."""

    label: int
    word: str  #: empty for silence
    voice: str  #: espeak-ng voice name, ``accent+variant``
    speed: int  #: words per minute
    pitch: int  #: 0-99
    amplitude: int  #: 0-200
    noise: str  #: "white" or "pink"
    snr_db: float  #: word RMS over noise RMS (silence: unused)
    hum: float  #: mains-hum amplitude relative to the noise RMS (silence only)
    position: float  #: 0-1: where the word sits in the room left in the clip
    seed: int  #: noise seed


def clip_specs(split: str, per_class: Optional[int] = None) -> list[ClipSpec]:
    """The clips of a split: ``per_class`` of each of the 12 labels, grouped by label.

    Each label draws from its own seeded stream, so the first ``k`` clips of a label are the same
    whatever ``per_class`` is (a smaller set is a stratified prefix of a larger one). Keyword clips
    cycle through the split's voice variants, so every keyword gets each variant about equally;
    "unknown" clips draw from :data:`UNKNOWN_WORDS`.
    """
    if split not in VARIANTS:
        raise InputDataError(f"unknown split {split!r}: use 'calib' or 'test'")
    per_class = DEFAULT_PER_CLASS[split] if per_class is None else int(per_class)
    if per_class < 1:
        raise InputDataError(f"per_class must be positive, got {per_class}")
    variants = VARIANTS[split]
    specs = []
    for label in range(len(LABELS)):
        rng = np.random.default_rng([SPLIT_SEEDS[split], label])
        for i in range(per_class):
            if label == SILENCE:
                word = ""
            elif label == UNKNOWN:
                word = UNKNOWN_WORDS[int(rng.integers(len(UNKNOWN_WORDS)))]
            else:
                word = LABELS[label]
            specs.append(ClipSpec(
                label=label, word=word,
                voice=f"{ACCENTS[int(rng.integers(len(ACCENTS)))]}+{variants[(i + label) % len(variants)]}",
                speed=int(rng.integers(110, 231)), pitch=int(rng.integers(20, 81)),
                amplitude=int(rng.integers(50, 101)), noise=("white", "pink")[int(rng.integers(2))],
                snr_db=float(rng.uniform(25.0, 60.0)),
                hum=float(rng.uniform(0.0, 0.3)) if rng.random() < 0.3 else 0.0,
                position=float(rng.random()), seed=int(rng.integers(2**31))))
    return specs


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white noise, or pink noise (power falling as 1/f, shaped in frequency)."""
    if kind not in ("white", "pink"):
        raise InputDataError(f"unknown noise {kind!r}: use 'white' or 'pink'")
    shaped = rng.standard_normal(n)
    if kind == "pink":
        spectrum = np.fft.rfft(shaped)
        spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
        spectrum[0] = 0.0
        shaped = np.fft.irfft(spectrum, n=n)
    return shaped / np.sqrt(np.mean(shaped ** 2))


def trim_silence(x: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """``x`` without leading and trailing samples below ``threshold`` x its peak magnitude."""
    loud = np.flatnonzero(np.abs(x) > threshold * np.abs(x).max())
    return x[loud[0]:loud[-1] + 1] if loud.size else x[:0]


def render_clip(spec: ClipSpec, speech: Optional[np.ndarray]) -> np.ndarray:
    """One 1 s clip at 16 kHz (float64, not yet peak-normalised) from its spec and the espeak-ng
    output (int16 at 22,050 Hz; None for silence)."""
    rng = np.random.default_rng(spec.seed)
    noise = coloured_noise(spec.noise, CLIP_SAMPLES, rng)
    if spec.label == SILENCE:
        t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
        mains_hz = 50.0 if spec.seed % 2 else 60.0
        return noise + spec.hum * np.sqrt(2) * np.sin(2 * np.pi * mains_hz * t + rng.uniform(0, 2 * np.pi))
    if speech is None:
        raise InputDataError(f"no speech given for the {LABELS[spec.label]!r} clip")
    word = trim_silence(resample_22050_to_16000(speech.astype(np.float64) / 32768.0))
    if word.size == 0:
        raise InputDataError(f"espeak-ng produced silence for {spec.word!r} ({spec.voice})")
    if len(word) > CLIP_SAMPLES:
        word = word[:CLIP_SAMPLES]
    start = int(round(spec.position * (CLIP_SAMPLES - len(word))))
    clip = np.zeros(CLIP_SAMPLES)
    clip[start:start + len(word)] = word
    rms = np.sqrt(np.mean(word ** 2))
    return clip + noise * rms * 10.0 ** (-spec.snr_db / 20.0)


def synthesize_split(specs: Sequence[ClipSpec], workers: int = 2) -> np.ndarray:
    """The clips of ``specs``: float64 ``[N, 16000]`` at 16 kHz (not peak-normalised).

    espeak-ng runs once per distinct (word, voice, speed, pitch, amplitude), ``workers`` at a time.
    """
    keys = sorted({(s.word, s.voice, s.speed, s.pitch, s.amplitude) for s in specs if s.word})
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        speech = dict(zip(keys, pool.map(lambda k: espeak(*k), keys)))
    clips = np.empty((len(specs), CLIP_SAMPLES))
    for i, s in enumerate(specs):
        clips[i] = render_clip(s, speech.get((s.word, s.voice, s.speed, s.pitch, s.amplitude)))
    return clips


def cache_dir() -> Path:
    """``$MIXQ_BUILD_DIR/kws`` (default: ``build/kws`` in the repository)."""
    root = os.environ.get("MIXQ_BUILD_DIR")
    return (Path(root) if root else Path(__file__).resolve().parents[1] / "build") / "kws"


def _cache_key(split: str, specs: Sequence[ClipSpec]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT_VERSION, "espeak": espeak_version(), "split": split,
                         "specs": [asdict(s) for s in specs]}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def keyword_features(split: str, per_class: Optional[int] = None, cache: bool = True,
                     workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Float MFCC features and labels of a split of the synthetic keyword set.

    Parameters
    ----------
    split:
        ``"calib"`` (default 20 clips per label, 240 in all) or ``"test"`` (default 100 per label,
        1,200); disjoint voices and seeds.
    per_class:
        Clips per label (12 labels).
    cache:
        Read and write the features in :func:`cache_dir` (keyed by the clip specs, the espeak-ng
        version and :data:`FORMAT_VERSION`).

    Returns
    -------
    features, labels:
        float32 ``[N, 49, 10, 1]`` (the float model's input) and int64 ``[N]`` indices into
        :data:`LABELS`.

    Raises
    ------
    InputDataError
        If espeak-ng is missing (install the Debian package ``espeak-ng``) or the split is unknown.
    """
    specs = clip_specs(split, per_class)
    labels = np.array([s.label for s in specs], dtype=np.int64)
    if not espeak_available():
        raise InputDataError("the synthetic keyword set needs espeak-ng: install the Debian package "
                             "espeak-ng (scripts/install_system_deps.sh)")
    path = cache_dir() / f"{split}-{len(specs)}-{_cache_key(split, specs)}.npz"
    if cache and path.is_file():
        with np.load(path) as z:
            if z["features"].shape == (len(specs), NUM_FRAMES, NUM_MFCC, 1):
                log.info("%s split: %d clips from %s", split, len(specs), path)
                return z["features"], labels
    log.info("%s split: synthesizing %d clips with espeak-ng", split, len(specs))
    features = mfcc(synthesize_split(specs, workers))
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, features=features)
        tmp.replace(path)
    return features, labels


def load_keywords(split: str, input_scale: float = KWS_INPUT_SCALE, input_zero_point: int = KWS_INPUT_ZERO_POINT,
                  per_class: Optional[int] = None, cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic keyword set as the int8 model's input.

    Returns
    -------
    features, labels:
        int8 ``[N, 49, 10, 1]`` (:func:`keyword_features` quantized by :func:`quantize_features`
        with the given scale and zero point, by default those of ``kws_ref_model.tflite``) and
        int64 ``[N]`` indices into :data:`LABELS`.
    """
    x, labels = keyword_features(split, per_class, cache)
    return quantize_features(x, input_scale, input_zero_point), labels
