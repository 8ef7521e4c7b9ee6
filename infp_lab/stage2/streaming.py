"""Streaming motion generation (design.md section 5): audio of both tracks arrives in
chunks; motion latents leave with a bounded delay.

Each push (1) appends the chunk to a rolling audio buffer and computes log-mel features
for the frames whose audio, STFT window included, is complete (`StreamingFeatures`,
identical to `audio_features` on the whole signal); (2) runs the audio encoders and the
guider on a bounded recent slice of features with `lookahead` frames of context on both
sides, so f_m matches the offline guider; (3) samples every complete window of f_m,
conditioned on the last C generated latents. With the same window and seed the streamed
latents equal `generate`'s (up to float error).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from infp_lab.data.audio import FPS, SAMPLE_RATE, AudioFeatureConfig, audio_features, prepare_audio
from infp_lab.stage2.generate import BLEND_FRAMES, WindowChain, checked_frames, prepare_style
from infp_lab.stage2.model import MotionGenerator

N_FFT = 512  # the FFT size of infp_lab.data.audio.log_mel (its STFT window reaches N_FFT // 2 ahead)


class StreamingFeatures:
    """Incremental log-mel features of two tracks, equal to `audio_features` of the whole audio."""

    def __init__(self, config: AudioFeatureConfig = AudioFeatureConfig()):
        self.config = config
        self.hop = config.sample_rate // config.fps  # samples per video frame
        # frame t is final once audio reaches (t + 1) * hop + tail: its last mel frame's window
        self.tail = (config.mels_per_frame - 1) * config.hop_length + N_FFT // 2 - self.hop
        self.buffers = [np.zeros(0, np.float32), np.zeros(0, np.float32)]
        self.buffer_start = 0  # absolute index of the buffers' first sample
        self.samples = 0  # samples received per track
        self.frames = 0  # feature frames produced

    def push(self, self_chunk: np.ndarray, other_chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append equal-length 16 kHz chunks -> the newly complete frames' features, (k, A) each."""
        if len(self_chunk) != len(other_chunk):
            raise ValueError(f"chunks must have the same length, got {len(self_chunk)} and {len(other_chunk)}")
        self.buffers = [np.concatenate([b, c]) for b, c in zip(self.buffers, (self_chunk, other_chunk))]
        self.samples += len(self_chunk)
        return self._compute(max(0, (self.samples - self.tail) // self.hop))

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """Features of the remaining whole frames (the end of the audio is known now)."""
        return self._compute(self.samples // self.hop)

    def _compute(self, ready: int) -> tuple[np.ndarray, np.ndarray]:
        new = ready - self.frames
        if new <= 0:
            return tuple(np.zeros((0, self.config.dim), np.float32) for _ in range(2))
        first = max(0, self.frames - 1)  # one frame of left context keeps the STFT window off the edge
        offset = first * self.hop - self.buffer_start
        features = tuple(audio_features(b[offset:], self.frames - first + new, self.config)[-new:]
                         for b in self.buffers)  # (new, A) each
        self.frames = ready
        keep = max(0, ready - 1) * self.hop - self.buffer_start  # drop audio no longer needed
        self.buffers = [b[keep:] for b in self.buffers]
        self.buffer_start += keep
        return features


class StreamingGenerator:
    """Consumes audio chunks of both tracks and emits motion latents with bounded latency.

    Args:
        model: a trained MotionGenerator with the "logmel" audio encoder.
        chunk_ms: the (largest) chunk length the caller pushes, in milliseconds.
        window: frames per generated window (default: the frames in one chunk).
        audio_scale, style_scale: classifier-free guidance scales.
        guidance_smoothing: Gaussian sigma (frames) of the guidance's smoothing within each
            window (as in `generate`; windows of a few frames smooth less).
        style_reference: optional (T', Dm) raw motion latents of a reference clip.
        steps, sampler: override the config's sampler steps and type.
        seed: the noise seed (the same seed and chunking give the same stream).
        blend: frames over which each window's jump at its first frame is spread (WindowChain).
        start: optional (T0, Dm) raw motion latents the motion continues from, e.g. the
            portrait's own latent (as in `generate`).
        portrait_style: without a `style_reference`, the portrait (the last row of `start`)
            held still is the style reference (as in `generate`).
        pose_gain: guidance gain along the head-pose directions (as in `generate`).
        pose_smoothing: time constant (frames) of the low-pass on the head pose (as in
            `generate`; the filter is causal, so streaming filters as offline generation does).
    """

    def __init__(self, model: MotionGenerator, chunk_ms: float = 200, window: int | None = None,
                 audio_scale: float | None = None, style_reference=None, steps: int | None = None, seed: int = 0,
                 style_scale: float = 1.0, sampler: str | None = None, blend: int = BLEND_FRAMES, start=None,
                 guidance_smoothing: float | None = None, portrait_style: bool = True,
                 pose_gain: float | None = None, pose_smoothing: float | None = None):
        config = model.config
        if config.audio.type != "logmel":
            raise ValueError(f"streaming needs the 'logmel' audio encoder (its receptive field is bounded), "
                             f"this model uses {config.audio.type!r}")
        if not 0 < chunk_ms <= 10_000:
            raise ValueError(f"chunk_ms must be in (0, 10000], got {chunk_ms}")
        self.model = model.eval()
        self.chunk_samples = max(1, round(chunk_ms * SAMPLE_RATE / 1000))
        default = min(config.dit.window, max(1, round(chunk_ms * FPS / 1000)))
        self.window = default if window is None else int(window)
        if not 1 <= self.window <= config.dit.window:
            raise ValueError(f"window must be in [1, {config.dit.window}] frames, got {self.window}")
        self.lookahead = model.lookahead
        self.device = next(model.parameters()).device
        start = None if start is None else checked_frames(start, "start", config.latent_dim, self.device)
        with torch.no_grad():
            self.style = prepare_style(model, style_reference, self.device, start, portrait_style)
        self.chain = WindowChain(model, self.style, audio_scale, style_scale, steps, sampler, seed, blend, start,
                                 guidance_smoothing, pose_gain, pose_smoothing)
        self.features = StreamingFeatures()
        self.feature_start = 0  # absolute frame of the first cached feature row
        self.cache = [np.zeros((0, config.audio.input_dim), np.float32) for _ in range(2)]
        self.guided = 0  # frames whose f_m is final
        self.pending: list[torch.Tensor | None] = [None, None]  # f_m (styled, unstyled) not yet generated
        self.emitted = 0
        self.finished = False

    @property
    def latency_samples(self) -> int:
        """Worst-case audio samples between a frame's audio arriving and its latent being emitted.

        The first frame of a window waits for the rest of the window (window - 1 frames),
        the encoders' lookahead, the STFT tail, and the chunk that completes all of it.
        Compute time is not included.
        """
        return self.features.hop * (self.window - 1 + self.lookahead) + self.features.tail + self.chunk_samples

    @property
    def latency_frames(self) -> int:
        return math.ceil(self.latency_samples / self.features.hop)

    @property
    def latency_s(self) -> float:
        return self.latency_samples / SAMPLE_RATE

    def push(self, self_chunk: np.ndarray, other_chunk: np.ndarray) -> torch.Tensor:
        """Add one chunk per track (equal lengths, 16 kHz) -> newly generated latents (k, Dm), k >= 0."""
        if self.finished:
            raise ValueError("this stream was flushed; start a new StreamingGenerator")
        chunks = [prepare_audio(np.asarray(c), SAMPLE_RATE, name=f"{name} chunk")
                  for c, name in ((self_chunk, "self"), (other_chunk, "other"))]
        if len(chunks[0]) != len(chunks[1]):
            raise ValueError(f"self and other chunks must have the same length, got {len(chunks[0])} "
                             f"and {len(chunks[1])} samples")
        return self._advance(self.features.push(*chunks), final=False)

    def flush(self) -> torch.Tensor:
        """End of the stream: generate the remaining frames -> latents (k, Dm)."""
        if self.finished:
            return torch.zeros(0, self.model.config.latent_dim, device=self.device)
        self.finished = True
        return self._advance(self.features.flush(), final=True)

    @torch.no_grad()
    def _advance(self, new_features: tuple[np.ndarray, np.ndarray], final: bool) -> torch.Tensor:
        self.cache = [np.concatenate([c, f]) for c, f in zip(self.cache, new_features)]
        available = self.features.frames
        guided = available if final else max(self.guided, available - self.lookahead)
        if guided > self.guided:
            self._guide(available, guided)
        out = []
        while self.pending[0] is not None and (self.pending[0].shape[1] >= self.window
                                               or (final and self.pending[0].shape[1] > 0)):
            width = min(self.window, self.pending[0].shape[1])
            feature, unstyled = (None if p is None else p[:, :width] for p in self.pending)
            out.append(self.chain(feature, unstyled))
            self.pending = [None if p is None else p[:, width:] for p in self.pending]
        latents = torch.cat(out) if out else torch.zeros(0, self.model.config.latent_dim, device=self.device)
        self.emitted += latents.shape[0]
        return latents

    def _guide(self, available: int, guided: int) -> None:
        """f_m of frames [self.guided, guided) from features with lookahead context on both sides."""
        lo = max(0, self.guided - self.lookahead)
        rows = slice(lo - self.feature_start, available - self.feature_start)
        tracks = [torch.from_numpy(c[rows]).to(self.device)[None] for c in self.cache]  # (1, n, A) each
        keep = slice(self.guided - lo, guided - lo)
        new = [self.model.guide(*tracks, self.style).feature[:, keep]]  # (1, k, D)
        new.append(self.model.guide(*tracks, None).feature[:, keep] if self.style is not None else None)
        self.pending = [n if p is None else torch.cat([p, n], dim=1) for p, n in zip(self.pending, new)]
        self.guided = guided
        drop = max(0, guided - self.lookahead) - self.feature_start  # features no longer needed
        self.cache = [c[drop:] for c in self.cache]
        self.feature_start += drop
