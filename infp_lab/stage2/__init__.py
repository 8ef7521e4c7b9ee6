"""INFP stage 2: audio-guided interactive motion generation (design.md section 5)."""

from infp_lab.stage2.audio_encoder import AudioEncoder, encoder_inputs
from infp_lab.stage2.config import (PRESETS, AudioEncoderConfig, DiffusionConfig, DiTConfig, GuiderConfig,
                                    SamplingDefaults, Stage2Config, StyleConfig, preset)
from infp_lab.stage2.diffusion import diffusion_loss, guided_prediction, make_sampler, make_train_scheduler, sample
from infp_lab.stage2.dit import MotionDiT
from infp_lab.stage2.generate import GenerationOutput, generate, generate_from_audio
from infp_lab.stage2.memory_guider import GuiderOutput, InteractiveMotionGuider, MemoryBank
from infp_lab.stage2.model import MotionGenerator, set_sampling_defaults
from infp_lab.stage2.pose import pose_directions
from infp_lab.stage2.streaming import StreamingFeatures, StreamingGenerator
from infp_lab.stage2.style import StyleEncoder

__all__ = [
    "PRESETS", "AudioEncoder", "AudioEncoderConfig", "DiTConfig", "DiffusionConfig", "GenerationOutput",
    "GuiderConfig", "GuiderOutput", "InteractiveMotionGuider", "MemoryBank", "MotionDiT", "MotionGenerator",
    "SamplingDefaults", "Stage2Config", "StreamingFeatures", "StreamingGenerator", "StyleConfig", "StyleEncoder",
    "diffusion_loss", "encoder_inputs", "generate", "generate_from_audio", "guided_prediction", "make_sampler",
    "make_train_scheduler", "pose_directions", "preset", "sample", "set_sampling_defaults",
]
