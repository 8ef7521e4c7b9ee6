"""Stage-1 configuration: one frozen dataclass per component and named presets
(design.md section 4; style.md "Config")."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from infp_lab.render import NUM_LANDMARKS
from infp_lab.stage1.hybrid import MOUTH_MAPS

MOUTH_DETAIL_SCALES = (0, 2, 4)  # DecoderConfig.mouth_detail: off, or the mouth drawn at 2 or 4 times the resolution
MOTION_INPUTS = ("hybrid", "image", "landmark_map")  # the paper's ablation: hybrid vs intact image vs landmark map
HYBRID_POINT_SETS = ("contour", "regions")  # the landmarks the hybrid input reads (see stage1/motion_encoder.py)


@dataclass(frozen=True)
class MotionEncoderConfig:
    """Driving frame + landmarks -> 1-D motion latent (see stage1/motion_encoder.py)."""

    channels: tuple[int, ...] = (32, 64, 96, 128, 192)  # strided CNN over the intact frame ("image" input)
    input: str = "hybrid"  # one of MOTION_INPUTS
    region_size: int = 32  # side of the upright eye and mouth crops ("hybrid" input)
    region_channels: tuple[int, ...] = (32, 64, 96)  # strided CNN over each crop
    hidden: int = 128
    points: str = "contour"  # landmarks the "hybrid" input's point MLP reads: one of HYBRID_POINT_SETS


@dataclass(frozen=True)
class AppearanceEncoderConfig:
    """Source portrait -> appearance features: a 2-D map ("2d") or a 3-D volume ("3d")."""

    type: str = "2d"
    channels: tuple[int, ...] = (32, 64, 96)  # one stride-2 step between entries
    depth: int = 1  # depth bins of the 3-D volume (1 for "2d")
    blocks: int = 1


@dataclass(frozen=True)
class FlowConfig:
    """(source latent, driving latent, appearance) -> dense flow + occlusion."""

    channels: int = 64
    levels: int = 2
    max_flow: float = 0.5  # in normalised [-1, 1] image coordinates
    mouth_prior_sigma: float = 0.0  # > 0: the image warp's landmark prior, around the mouth, at this sigma (stage1/warping.py)

    def __post_init__(self) -> None:
        if self.mouth_prior_sigma < 0:
            raise ValueError(f"flow.mouth_prior_sigma must be >= 0 (0: off), got {self.mouth_prior_sigma}")


@dataclass(frozen=True)
class DecoderConfig:
    """Warped features -> image, blended with the warped source image."""

    blocks: int = 2
    channels: tuple[int, ...] = (64, 32)  # one x2 upsampling step per entry
    driven_maps: bool = True  # also sees where the driven mouth and eyes open (stage1/hybrid.py: driven_maps)
    mouth_from_decoder: bool = False  # its own RGB inside the driven mouth opening (needs driven_maps; tried, weights/README.md)
    refine_flow: bool = True  # a full-resolution correction of the flow that warps the source image (sharp outlines)
    mouth_residual: bool = False  # an RGB residual added inside the driven mouth opening (teeth; needs driven_maps)
    mouth_map: str = "lips"  # the driven maps' mouth: "lips" (over the inner lips) or "gap" (the opening alone)
    mouth_interior: bool = False  # also masks of the opening, teeth and tongue (stage1/hybrid.py; tried, weights/README.md)
    mouth_detail: int = 0  # > 0: the mouth redrawn at this many times the image's resolution (decoder.MouthDetail)
    mouth_composite: bool = False  # the source's lips moved by a mesh onto the driven ones, the opening darkened (stage1/mouth_composite.py)

    def __post_init__(self) -> None:
        if self.mouth_map not in MOUTH_MAPS:
            raise ValueError(f"decoder.mouth_map must be one of {MOUTH_MAPS}, got {self.mouth_map!r}")
        if self.mouth_interior and not self.driven_maps:
            raise ValueError("decoder.mouth_interior adds to the driven maps: it needs driven_maps")
        if self.mouth_detail and not self.driven_maps:
            raise ValueError("decoder.mouth_detail draws at the driven landmarks, as the driven maps do: it needs driven_maps")
        if self.mouth_detail not in MOUTH_DETAIL_SCALES:
            raise ValueError(f"decoder.mouth_detail must be one of {MOUTH_DETAIL_SCALES} (0: off), got {self.mouth_detail}")


# Decoder options a fine-tune may change (stage1.train.init_from); of them, those that add parts
# (parameters or input maps), which a fine-tune may add and never drop.
FINE_TUNABLE_DECODER_OPTIONS = ("driven_maps", "mouth_from_decoder", "refine_flow", "mouth_residual", "mouth_map",
                                "mouth_interior", "mouth_detail")
DECODER_PARTS = ("driven_maps", "refine_flow", "mouth_residual", "mouth_interior", "mouth_detail")


@dataclass(frozen=True)
class Stage1Config:
    """The whole head-imitation model."""

    image_size: int = 128
    latent_dim: int = 64
    num_landmarks: int = NUM_LANDMARKS
    motion: MotionEncoderConfig = field(default_factory=MotionEncoderConfig)
    appearance: AppearanceEncoderConfig = field(default_factory=AppearanceEncoderConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    param_names: tuple[str, ...] = ()  # motion parameters the param head reads from the latent (none: no head)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Stage1Config":
        def tuples(sub: dict) -> dict:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in sub.items()}

        return cls(
            image_size=d["image_size"], latent_dim=d["latent_dim"], num_landmarks=d["num_landmarks"],
            motion=MotionEncoderConfig(**tuples(d["motion"])),
            appearance=AppearanceEncoderConfig(**tuples(d["appearance"])),
            flow=FlowConfig(**tuples(d["flow"])),
            decoder=DecoderConfig(**{"driven_maps": False, "mouth_from_decoder": False, "refine_flow": False,
                                     "mouth_residual": False,
                             **tuples(d["decoder"])}),  # older files
            param_names=tuple(d.get("param_names", ())),
        )

    def with_motion_input(self, motion_input: str) -> "Stage1Config":
        if motion_input not in MOTION_INPUTS:
            raise ValueError(f"motion input must be one of {MOTION_INPUTS}, got {motion_input!r}")
        return replace(self, motion=replace(self.motion, input=motion_input))


PRESETS: dict[str, Stage1Config] = {
    # CPU-trainable, shipped: 128x128, 64-d latent, 2-D appearance map at 32x32.
    "tiny": Stage1Config(),
    # Paper scale, for GPUs: 512x512, 512-d latent, a 3-D appearance volume (as in the paper's figure).
    "paper": Stage1Config(
        image_size=512, latent_dim=512,
        motion=MotionEncoderConfig(channels=(64, 128, 256, 256, 512, 512, 512), region_size=64,
                                   region_channels=(64, 128, 256, 256), hidden=512),
        appearance=AppearanceEncoderConfig(type="3d", channels=(64, 128, 256), depth=16, blocks=3),
        flow=FlowConfig(channels=256, levels=3),
        decoder=DecoderConfig(blocks=4, channels=(256, 128)),
    ),
}


def preset(name: str) -> Stage1Config:
    if name not in PRESETS:
        raise ValueError(f"unknown stage-1 preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
