"""Stage 1: shapes of both presets, the hybrid representation, save/from_pretrained,
export, resume after a kill, DDP on CPU, evaluation smoke test and bad inputs."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from infp_lab.render import LANDMARK_GROUPS
from infp_lab.stage1.config import PRESETS, preset
from infp_lab.stage1.data import FramePairDataset, canonical_landmarks
from infp_lab.stage1.hybrid import MOUTH, driven_maps, hybrid_representation, landmark_map, region_mask
from infp_lab.stage1.model import HeadImitator

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples" / "synconv"


def _batch(size, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(b, 3, size, size, generator=g)
    landmarks = canonical_landmarks(np.zeros((b, 15), np.float32) + np.eye(15, dtype=np.float32)[14])  # scale = 1
    return frames, torch.from_numpy(landmarks.astype(np.float32))


@pytest.mark.parametrize("name", ["tiny", "paper"])
def test_presets_build_and_run(name):
    config = preset(name)
    model = HeadImitator(config).eval()
    size = config.image_size
    frames, landmarks = _batch(size, b=1)
    with torch.no_grad():
        out = model(frames, landmarks, frames, landmarks)
    assert out.image.shape == (1, 3, size, size)
    assert out.driving_latent.shape == (1, config.latent_dim)
    assert out.landmarks.shape == (1, config.num_landmarks, 2)
    assert torch.isfinite(out.image).all() and 0 <= out.image.min() and out.image.max() <= 1
    if config.appearance.type == "3d":
        assert out.flow.shape[1] == 3 and out.flow.dim() == 5  # a 3-D flow over a feature volume
    assert preset("paper").latent_dim == 512 and preset("paper").image_size == 512


def test_hybrid_representation_keeps_eyes_and_mouth_only():
    frames, landmarks = _batch(128, b=1)
    frames = torch.ones_like(frames) * 0.5
    hybrid = hybrid_representation(frames, landmarks)[0]
    px = (landmarks[0] * 128).long()
    for group in ("right_eye", "left_eye", "outer_lip"):
        centre = px[list(LANDMARK_GROUPS[group])].float().mean(0).long()
        assert torch.allclose(hybrid[:, centre[1], centre[0]], torch.full((3,), 0.5), atol=1e-3), group
    nose_bridge = px[LANDMARK_GROUPS["nose"][0]]  # between the eyes, above them: masked
    forehead = (px[LANDMARK_GROUPS["right_brow"][2]] + px[LANDMARK_GROUPS["left_brow"][2]]) // 2 - torch.tensor([0, 8])
    for x, y in (nose_bridge, forehead, (2, 2), (125, 64)):
        assert hybrid[:, y, x].max() < 0.05, (x, y)
    # the face contour is drawn on: bright dots at the jaw points
    for point in px[list(LANDMARK_GROUPS["contour"])]:
        assert hybrid[:, point[1].clamp(0, 127), point[0].clamp(0, 127)].min() > 0.7
    kept = region_mask(landmarks, 128).mean()
    assert 0.02 < kept < 0.2  # a small part of the frame survives
    dots = landmark_map(landmarks, 128)
    assert dots.shape == (1, 3, 128, 128) and 0.005 < dots.mean() < 0.1


def test_driven_maps_open_with_the_mouth_and_eyes():
    from infp_lab.render.face_model import PARAM_NAMES

    params = np.zeros((3, 15), np.float32)
    params[:, PARAM_NAMES.index("scale")] = 1
    params[1, PARAM_NAMES.index("jaw_open")] = 0.8
    params[2, [PARAM_NAMES.index("blink_left"), PARAM_NAMES.index("blink_right")]] = 1
    maps = driven_maps(torch.from_numpy(canonical_landmarks(params).astype(np.float32)), 128)  # rest, open, blink
    assert maps.shape == (3, 3, 128, 128)
    mouth, eyes = maps[:, 0].sum((1, 2)), maps[:, 1].sum((1, 2))
    assert mouth[1] > 3 * mouth[0] and eyes[2] < 0.6 * eyes[0] and torch.isclose(eyes[1], eyes[0], rtol=0.1)
    lips = (torch.from_numpy(canonical_landmarks(params[1:2])[0, list(LANDMARK_GROUPS["inner_lip"])]) * 128).mean(0)
    assert maps[1, 0, int(lips[1]), int(lips[0])] > 0.9 and maps[1, 0, 5, 5] == 0  # the opening is drawn in place



def test_the_gap_map_draws_the_opening_between_the_inner_lips_alone():
    """`mouth_gap` is empty for a closed mouth, grows with the jaw, and lies between the inner
    lips' middles; `mouth_opening` (the "lips" map) hardly tells a half-open mouth from a
    closed one, which is why the gap map exists."""
    from infp_lab.render.face_model import PARAM_NAMES
    from infp_lab.stage1.hybrid import INNER_LIP, mouth_gap

    params = np.zeros((4, 15), np.float32)
    params[:, PARAM_NAMES.index("scale")] = 1
    params[:, PARAM_NAMES.index("jaw_open")] = [0.0, 0.15, 0.4, 0.8]
    landmarks = torch.from_numpy(canonical_landmarks(params).astype(np.float32))
    gap = mouth_gap(landmarks, 128)
    area = gap.sum((1, 2))
    assert gap.shape == (4, 128, 128) and 0 <= gap.min() and gap.max() <= 1
    assert area[0] < 1 and area[1] > 5 and area[2] > 2 * area[1] and area[3] > 1.5 * area[2]
    upper, lower = (landmarks[3, INNER_LIP[i]] * 128 for i in (2, 6))
    middle = ((upper + lower) / 2).long()
    assert gap[3, middle[1], middle[0]] == 1 and gap[3, :int(upper[1]) - 1].sum() == 0  # nothing above the gap
    lips = driven_maps(landmarks, 128)[:, 0].sum((1, 2))
    assert (area[1] - area[0]) / area[3] > 2 * (lips[1] - lips[0]) / lips[3]  # half open stands out from closed
    assert torch.equal(driven_maps(landmarks, 128, "gap")[:, 0], gap)
    assert torch.equal(driven_maps(landmarks, 128, "gap")[:, 1:], driven_maps(landmarks, 128)[:, 1:])
    with pytest.raises(ValueError, match="mouth must be one of"):
        driven_maps(landmarks, 128, "teeth")


def test_the_mouth_map_is_part_of_the_saved_config(tmp_path):
    """A gap-map model saves and rebuilds as one; older files (no mouth_map) draw the lips map;
    a lips-map model fine-tunes into a gap-map one (same parameters); unknown maps are refused."""
    from dataclasses import replace

    from infp_lab.stage1.config import Stage1Config
    from infp_lab.stage1.train import init_from

    config = preset("tiny")
    gap = replace(config, decoder=replace(config.decoder, mouth_residual=True, mouth_map="gap"))
    model = HeadImitator(gap)
    model.save_pretrained(tmp_path / "gap.safetensors")
    assert HeadImitator.from_pretrained(tmp_path / "gap.safetensors").config == gap
    old = config.to_dict()
    del old["decoder"]["mouth_map"]
    assert Stage1Config.from_dict(old).decoder.mouth_map == "lips"
    with pytest.raises(ValueError, match="mouth_map must be one of"):
        Stage1Config.from_dict({**old, "decoder": {**old["decoder"], "mouth_map": "teeth"}})
    lips = HeadImitator(replace(gap, decoder=replace(gap.decoder, mouth_map="lips")))
    init_from(model, lips)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), lips.state_dict().values()))
    frames, landmarks = _batch(128)
    with torch.no_grad():
        lips.decoder.mouth_residual[-1].bias.fill_(-3.0)
        model.decoder.mouth_residual[-1].bias.fill_(-3.0)
        assert not torch.equal(model(frames, landmarks, frames, landmarks).image,
                               lips(frames, landmarks, frames, landmarks).image)



def _mouth_params(*frames: dict[str, float]) -> np.ndarray:
    """Motion parameters (len(frames), 15) of an unscaled, unposed head, one row per dict of the
    parameters it sets (jaw_open, lip_round, ...); the rest stay at rest."""
    from infp_lab.render.face_model import PARAM_NAMES

    params = np.zeros((len(frames), len(PARAM_NAMES)), np.float32)
    params[:, PARAM_NAMES.index("scale")] = 1
    for row, values in zip(params, frames):
        for name, value in values.items():
            row[PARAM_NAMES.index(name)] = value
    return params


def test_the_mouth_interior_masks_lie_on_the_rendered_teeth_and_cavity():
    """On a SynConv face with the jaw open, the teeth and tongue masks lie on brighter pixels
    than the rest of the opening (the dark cavity); a closed mouth has (almost) no opening,
    and the teeth and tongue lie inside the opening."""
    from infp_lab.render import render_frame
    from infp_lab.stage1.data import CANONICAL_FACE
    from infp_lab.stage1.hybrid import mouth_interior

    params = _mouth_params({}, {"jaw_open": 0.8})
    landmarks = torch.from_numpy(canonical_landmarks(params).astype(np.float32))
    maps = mouth_interior(landmarks, 256)
    assert maps.shape == (2, 3, 256, 256) and maps.min() >= 0 and maps.max() <= 1
    opening, teeth, tongue = maps[1]
    assert maps[0, 0].sum() < 0.1 * opening.sum()
    assert (teeth <= opening + 1e-6).all() and (tongue <= opening + 1e-6).all()
    image = torch.from_numpy(render_frame(params[1], CANONICAL_FACE, 256)).float().mean(-1) / 255  # (H, W) grey
    cavity = image[(opening > 0.9) & (teeth < 0.1) & (tongue < 0.1)].mean()  # dark red
    assert image[teeth > 0.5].mean() > cavity + 0.15  # white, blended at the band's edges
    assert image[tongue > 0.5].mean() > cavity + 0.15  # pink


def test_lip_gap_and_width_follow_the_jaw_and_the_rounding():
    """The lip gap grows as the jaw opens; the width between the mouth's corners shrinks as
    the lips round; both in the landmarks' units, for any leading shape."""
    from infp_lab.stage1.hybrid import lip_gap, lip_width

    landmarks = canonical_landmarks(_mouth_params({}, {"jaw_open": 0.8}, {"lip_round": 1.0})) * 128  # (3, L, 2) pixels
    gap, width = lip_gap(landmarks), lip_width(landmarks)
    assert gap.shape == width.shape == (3,)
    assert gap[1] > gap[0] + 3 and width[2] < 0.85 * width[0]
    assert np.allclose(lip_gap(landmarks[None]), gap[None])


def test_a_decoder_that_sees_the_mouth_interior_fine_tunes_from_one_that_did_not(tmp_path):
    """The interior masks are saved in the config (older files have none); a model without them
    fine-tunes into one with them that renders the same until the masks' weights move, and
    then renders another mouth; they cannot be dropped again."""
    from dataclasses import replace

    from infp_lab.stage1.config import DecoderConfig, Stage1Config
    from infp_lab.stage1.train import init_from

    config = preset("tiny")
    without = replace(config, decoder=replace(config.decoder, mouth_residual=True))
    with_interior = replace(without, decoder=replace(without.decoder, mouth_interior=True))
    old = without.to_dict()
    del old["decoder"]["mouth_interior"]
    assert Stage1Config.from_dict(old) == without
    with pytest.raises(ValueError, match="needs driven_maps"):
        DecoderConfig(driven_maps=False, mouth_interior=True)
    torch.manual_seed(2)
    before = HeadImitator(without).eval()
    before.save_pretrained(tmp_path / "before.safetensors")
    after = HeadImitator(with_interior).eval()
    after.save_pretrained(tmp_path / "after.safetensors")
    assert HeadImitator.from_pretrained(tmp_path / "after.safetensors").config == with_interior
    init_from(after, tmp_path / "before.safetensors")
    frames, _ = _batch(128, b=1)
    closed, opened = _closed_and_open_landmarks()
    with torch.no_grad():
        latent = after.encode_motion(frames, closed)
        appearance = after.encode_appearance(frames)
        render = lambda model, target: model.render(frames, closed, appearance, latent, latent, target=target)[0]
        assert torch.allclose(render(after, opened), render(before, opened), atol=1e-6)
        decoder = after.decoder
        for weight, at in ((decoder.stem.conv.weight, -3), (decoder.refine[0].conv.weight, -3),
                           (decoder.mouth_residual[0].conv.weight, -6)):  # the mouth residual's last 3: the source
            weight[:, at:at + 3].normal_(std=0.1)  # only the interior masks' inputs
        decoder.mouth_residual[-1].weight.normal_(std=0.1)
        assert not torch.allclose(render(after, opened), render(before, opened), atol=1e-3)
        assert torch.equal(decoder.maps(opened, 32)[:, :3], before.decoder.maps(opened, 32))
    with pytest.raises(ValueError, match="another model config"):
        init_from(before, tmp_path / "after.safetensors")


def _closed_and_open_landmarks():
    closed, opened = torch.from_numpy(canonical_landmarks(_mouth_params({}, {"jaw_open": 0.8})).astype(np.float32)).split(1)
    return closed, opened


def test_the_sharp_mouth_prior_lets_the_lips_part():
    """The smooth landmark prior at a quarter of the image's resolution averages the upper and
    the lower lip's displacements, so a warp by it cannot part closed lips; `sharpen_mouth`
    recomputes it around the mouth at full resolution with a smaller sigma: at the driven
    lower lip the flow then points much closer to the source's lower lip, and away from the
    mouth the flow is the one it was given."""
    import torch.nn.functional as F

    from infp_lab.stage1.config import FlowConfig
    from infp_lab.stage1.hybrid import INNER_LIP
    from infp_lab.stage1.warping import landmark_flow, sharpen_mouth

    source, driven = _closed_and_open_landmarks()
    prior = landmark_flow(source, driven, (32, 32))
    smooth = F.interpolate(prior, size=(128, 128), mode="bilinear", align_corners=False)
    sharp = sharpen_mouth(prior, prior, source, driven, 128, sigma=0.02)
    assert sharp.shape == (1, 2, 128, 128)
    lower = INNER_LIP[6]  # the middle of the lower inner lip
    x, y = (driven[0, lower] * 128).long().tolist()
    wanted = 2 * (source[0, lower] - driven[0, lower])  # the backward offset there, in grid units
    error = lambda flow: (flow[0, :, y, x] - wanted).norm()
    assert error(sharp) < 0.5 * error(smooth)
    assert torch.equal(sharp[..., :48, :], smooth[..., :48, :])  # the eyes and above: unchanged
    with pytest.raises(ValueError, match="mouth_prior_sigma"):
        FlowConfig(mouth_prior_sigma=-0.01)


def test_the_mouth_prior_is_part_of_the_saved_config(tmp_path):
    """A model with the sharp mouth prior saves and rebuilds as one; older files have none; a
    model without it fine-tunes into one with it (same parameters), which renders the same
    face with another mouth when the jaw opens."""
    from dataclasses import replace

    from infp_lab.stage1.config import Stage1Config
    from infp_lab.stage1.train import init_from

    config = preset("tiny")
    sharp_config = replace(config, flow=replace(config.flow, mouth_prior_sigma=0.02))
    model = HeadImitator(sharp_config).eval()
    model.save_pretrained(tmp_path / "sharp.safetensors")
    assert HeadImitator.from_pretrained(tmp_path / "sharp.safetensors").config == sharp_config
    old = config.to_dict()
    del old["flow"]["mouth_prior_sigma"]
    assert Stage1Config.from_dict(old).flow.mouth_prior_sigma == 0
    smooth = HeadImitator(config).eval()
    init_from(model, smooth)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), smooth.state_dict().values()))
    frames, _ = _batch(128, b=1)
    closed, opened = _closed_and_open_landmarks()
    with torch.no_grad():
        appearance, latent = model.encode_appearance(frames), model.encode_motion(frames, closed)
        images = [m.render(frames, closed, appearance, latent, latent, target=opened)[0] for m in (smooth, model)]
    changed = (images[0] - images[1]).abs().amax(dim=1)[0]  # (H, W)
    assert changed.max() > 0.01 and changed[:48].max() == 0


def _sample_face_and_landmarks(frames=(0,)):
    from infp_lab.data.clip import load_clip
    from infp_lab.stage1.inference import clip_frames, clip_landmarks

    clip = load_clip(SAMPLES / "conv0000_a")
    return clip_frames(clip, 128, np.array(frames)), clip_landmarks(clip, np.array(frames))


def test_the_mouth_composite_moves_the_source_lips_onto_the_driven_ones():
    """The composite warps the source's lips by a mesh onto the driven lip landmarks: driven
    by its own landmarks moved 3 pixels down, the source's lips come out 3 pixels lower; away
    from the mouth the render is untouched; an opened jaw fills the opening between the driven
    inner lips with the lips' colour darkened, but keeps what the render drew brighter than the
    lips there (the decoder's teeth); the source's own landmarks give its own mouth back."""
    from infp_lab.stage1.hybrid import INNER_LIP
    from infp_lab.stage1.mouth_composite import composite_mouth

    face, landmarks = _sample_face_and_landmarks()
    render = torch.full_like(face, 0.5)  # a flat grey "render" shows what the composite draws
    moved = landmarks.clone()
    moved[:, :, 1] += 3 / 128
    lips = (landmarks[0, list(MOUTH)] * 128).round().long()
    x0, x1 = lips[:, 0].min().item(), lips[:, 0].max().item()
    y0, y1 = lips[:, 1].min().item(), lips[:, 1].max().item()
    box = (slice(None), slice(y0 + 4, y1 + 3), slice(x0 + 3, x1 - 2))  # inside the moved lips
    wanted = torch.roll(face, 3, dims=2)[0][box]  # the source's lips, 3 pixels down
    error = lambda driven: (composite_mouth(render, face, landmarks, driven)[0][box] - wanted).abs().mean()
    assert error(moved) < 0.03 and error(moved) < 0.3 * error(landmarks)
    out = composite_mouth(render, face, landmarks, moved)
    assert torch.equal(out[0, :, :y0 - 12], render[0, :, :y0 - 12])  # the eyes and above: untouched

    opened = landmarks.clone()
    lower = [60 + k for k in (4, 5, 6, 7)] + [55, 56, 57, 58, 59]  # the lower lip, inner and outer
    lower = [i for i in lower if i not in (60, 64)]
    opened[:, lower, 1] += 6 / 128
    gap_top, gap_bottom = (opened[0, INNER_LIP[2], 1] * 128).item(), (opened[0, INNER_LIP[6], 1] * 128).item()
    x = int((opened[0, INNER_LIP[2], 0] * 128).item())
    middle = lambda image: image[0, :, int(gap_top) + 2:int(gap_bottom) - 1, x - 1:x + 2]
    lips = face[0, :, y0 + 1:y1, x0 + 3:x1 - 2].mean()  # about the source's lip colour
    dark, bright = torch.full_like(face, 0.05), torch.full_like(face, 0.95)
    assert middle(dark).numel() > 0
    cavity = middle(composite_mouth(dark, face, landmarks, opened))  # a render with no teeth there
    assert 0.2 * lips < cavity.mean() < 0.8 * lips
    teeth = middle(composite_mouth(bright, face, landmarks, opened))  # what the decoder drew brighter than lips
    assert torch.allclose(teeth, torch.full_like(teeth, 0.95))
    closed = composite_mouth(face, face, landmarks, landmarks)
    assert (closed - face).abs().mean() < 1e-3  # the source's own landmarks: its own mouth back


def test_the_mouth_composite_is_part_of_the_saved_config(tmp_path):
    """A model with the composite saves and rebuilds as one, older files have none, and it
    renders only the mouth differently from the same weights without it."""
    from dataclasses import replace

    from infp_lab.stage1.config import Stage1Config

    config = preset("tiny")
    composite = replace(config, decoder=replace(config.decoder, mouth_composite=True))
    torch.manual_seed(0)
    plain = HeadImitator(config).eval()
    model = HeadImitator(composite).eval()
    model.load_state_dict(plain.state_dict())
    model.save_pretrained(tmp_path / "composite.safetensors")
    plain.save_pretrained(tmp_path / "plain.safetensors")
    assert HeadImitator.from_pretrained(tmp_path / "composite.safetensors").config == composite
    # turned on or off at load time whatever the file says, the tensors as they were
    assert HeadImitator.from_pretrained(tmp_path / "plain.safetensors", mouth_composite=True).config == composite
    switched_off = HeadImitator.from_pretrained(tmp_path / "composite.safetensors", mouth_composite=False)
    assert switched_off.config == config
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in switched_off.state_dict().items())
    old = config.to_dict()
    del old["decoder"]["mouth_composite"]
    assert Stage1Config.from_dict(old).decoder.mouth_composite is False
    face, landmarks = _sample_face_and_landmarks()
    closed, opened = _closed_and_open_landmarks()
    opened = opened - closed + landmarks  # the canonical jaw opening, on the sample face
    with torch.no_grad():
        appearance, latent = plain.encode_appearance(face), plain.encode_motion(face, landmarks)
        images = [m.render(face, landmarks, appearance, latent, latent, target=opened)[0] for m in (plain, model)]
    changed = (images[0] - images[1]).abs().amax(dim=1)[0]  # (H, W)
    assert changed.max() > 0.1 and changed[:60].max() == 0


def test_render_draws_at_the_landmarks_it_is_given():
    """By default the renderer draws at the source's landmarks moved by the landmark head;
    given those same landmarks it renders the same image, given others another one."""
    model = HeadImitator(preset("tiny")).eval()
    frames, landmarks = _batch(128)
    with torch.no_grad():
        appearance, latent = model.encode_appearance(frames), model.encode_motion(frames, landmarks)
        driving = latent.flip(0)
        moved = model.driven_landmarks(landmarks, latent, driving)
        default, *_ = model.render(frames, landmarks, appearance, latent, driving)
        same, *_ = model.render(frames, landmarks, appearance, latent, driving, target=moved)
        shifted, *_ = model.render(frames, landmarks, appearance, latent, driving, target=moved + 0.05)
    assert torch.equal(default, same) and (shifted - default).abs().mean() > 1e-3


def test_decoder_without_driven_maps_still_loads(tmp_path):
    """Weights saved before the decoder saw the driven maps rebuild as they were trained."""
    from dataclasses import replace

    from infp_lab.stage1.config import Stage1Config

    config = preset("tiny")
    old = config.to_dict()
    for option in ("driven_maps", "mouth_from_decoder", "refine_flow", "mouth_residual"):
        del old["decoder"][option]
    assert Stage1Config.from_dict(old) == replace(config, decoder=replace(config.decoder, driven_maps=False,
                                                                          refine_flow=False))
    assert Stage1Config.from_dict(config.to_dict()) == config and config.decoder.driven_maps
    model = HeadImitator(Stage1Config.from_dict(old))
    frames, landmarks = _batch(128)
    assert model(frames, landmarks, frames, landmarks).image.shape == (2, 3, 128, 128)
    with pytest.raises(ValueError, match="driven_landmarks"):
        HeadImitator(config).decoder(torch.zeros(1, 96, 32, 32), torch.zeros(1, 64), torch.zeros(1, 3, 128, 128),
                                     torch.zeros(1, 2, 32, 32))
    for option in ("mouth_from_decoder", "mouth_residual"):
        with pytest.raises(ValueError, match="need driven_maps"):
            HeadImitator(replace(config, decoder=replace(config.decoder, driven_maps=False, **{option: True})))


def test_the_decoder_draws_inside_the_driven_mouth_opening():
    """With mouth_from_decoder the warped source never shows inside the driven inner lips;
    elsewhere the blend is the one the decoder predicts."""
    from dataclasses import replace

    from infp_lab.render.face_model import PARAM_NAMES

    config = preset("tiny")
    torch.manual_seed(0)
    drawn = HeadImitator(replace(config, decoder=replace(config.decoder, mouth_from_decoder=True))).decoder.eval()
    pasted = HeadImitator(config).decoder.eval()
    pasted.load_state_dict(drawn.state_dict())
    with torch.no_grad():  # a blend that pastes the source nearly everywhere, as the trained models did
        drawn.to_rgb.bias[3] = pasted.to_rgb.bias[3] = 6.0
    params = np.zeros((1, 15), np.float32)
    params[0, PARAM_NAMES.index("scale")], params[0, PARAM_NAMES.index("jaw_open")] = 1, 0.8
    landmarks = torch.from_numpy(canonical_landmarks(params).astype(np.float32))
    opening = driven_maps(landmarks, 128)[0, 0]
    features, latent, source = torch.rand(1, 96, 32, 32), torch.randn(1, 64), torch.rand(1, 3, 128, 128)
    still = torch.zeros(1, 2, 32, 32)  # no flow
    with torch.no_grad():
        image, blend = drawn(features, latent, source, still, landmarks)
        _, pasted_blend = pasted(features, latent, source, still, landmarks)
    inside, outside = opening > 0.99, opening == 0
    assert inside.sum() > 20 and pasted_blend[0, 0][inside].min() > 0.9
    assert blend[0, 0][inside].max() < 0.01 and torch.equal(blend[0, 0][outside], pasted_blend[0, 0][outside])
    assert (image[0, :, inside] - source[0, :, inside]).abs().mean() > 0.05  # not the source there


def test_the_mouth_residual_draws_inside_the_driven_mouth_opening_only():
    """The residual changes the decoder's image where the mouth-opening map is, nowhere else."""
    from dataclasses import replace

    from infp_lab.render.face_model import PARAM_NAMES

    config = preset("tiny")
    torch.manual_seed(0)
    with_residual = HeadImitator(replace(config, decoder=replace(config.decoder, mouth_residual=True))).decoder.eval()
    plain = HeadImitator(config).decoder.eval()
    plain.load_state_dict(with_residual.state_dict(), strict=False)
    with torch.no_grad():
        with_residual.mouth_residual[-1].bias.fill_(-3.0)  # darken the inside of the mouth
    params = np.zeros((1, 15), np.float32)
    params[0, PARAM_NAMES.index("scale")], params[0, PARAM_NAMES.index("jaw_open")] = 1, 0.8
    landmarks = torch.from_numpy(canonical_landmarks(params).astype(np.float32))
    opening = driven_maps(landmarks, 128)[0, 0]
    features, latent, source = torch.rand(1, 96, 32, 32), torch.randn(1, 64), torch.rand(1, 3, 128, 128)
    still = torch.zeros(1, 2, 32, 32)
    with torch.no_grad():
        image, _ = with_residual(features, latent, source, still, landmarks)
        before, _ = plain(features, latent, source, still, landmarks)
    inside, outside = opening > 0.99, opening == 0
    assert inside.sum() > 20
    assert torch.equal(image[0, :, outside], before[0, :, outside])
    assert before[0, :, inside].mean() > 0.3 and image[0, :, inside].max() < 0.01  # dark, and clamped to [0, 1]


def test_the_mouth_detail_redraws_the_driven_mouth_only_and_follows_it():
    """The high-resolution mouth branch changes the image around the driven lips, nowhere
    else, darkens them when told to, and its square moves with the mouth."""
    from dataclasses import replace

    from infp_lab.render.face_model import PARAM_NAMES
    from infp_lab.stage1.config import DecoderConfig
    from infp_lab.stage1.hybrid import mouth_region

    config = preset("tiny")
    torch.manual_seed(0)
    detailed = HeadImitator(replace(config, decoder=replace(config.decoder, mouth_detail=2))).decoder.eval()
    plain = HeadImitator(config).decoder.eval()
    plain.load_state_dict(detailed.state_dict(), strict=False)
    with torch.no_grad():
        detailed.mouth_detail.to_rgb.bias.fill_(-3.0)
    params = np.zeros((1, 15), np.float32)
    params[0, PARAM_NAMES.index("scale")], params[0, PARAM_NAMES.index("jaw_open")] = 1, 0.8
    landmarks = torch.from_numpy(canonical_landmarks(params).astype(np.float32))
    features, latent, source = torch.rand(1, 96, 32, 32), torch.randn(1, 64), torch.rand(1, 3, 128, 128)
    still = torch.zeros(1, 2, 32, 32)
    changed = []
    for shift in (0.0, 0.05):  # the mouth, then the same mouth 6.4 pixels to the right
        moved = landmarks + torch.tensor([shift, 0.0])
        with torch.no_grad():
            image, _ = detailed(features, latent, source, still, moved)
            before, _ = plain(features, latent, source, still, moved)
        region = mouth_region(moved, 128)[0]
        assert torch.equal(image[0, :, region == 0], before[0, :, region == 0])
        inside = region > 0.99
        assert inside.sum() > 50 and before[0, :, inside].mean() > 0.3 and image[0, :, inside].max() < 0.05
        changed.append((image != before).any(dim=1)[0].nonzero()[:, 1].float().mean())
    assert 5 < changed[1] - changed[0] < 8
    with pytest.raises(ValueError, match="needs driven_maps"):
        DecoderConfig(driven_maps=False, mouth_detail=2)
    with pytest.raises(ValueError, match="mouth_detail must be one of"):
        DecoderConfig(mouth_detail=3)

    from infp_lab.stage1.train import MOUTH_DETAIL_LR_SCALE, parameter_groups

    model = HeadImitator(replace(config, decoder=replace(config.decoder, mouth_detail=2)))
    groups = parameter_groups(model)
    assert [g["lr_scale"] for g in groups] == [1.0, MOUTH_DETAIL_LR_SCALE]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.decoder.mouth_detail.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_mouth_crops_centre_on_the_mouth_and_scale_with_the_eyes():
    from infp_lab.stage1.discriminator import MOUTH_CROP, MOUTH_CROP_EXTENT, MouthDiscriminator, mouth_crops
    from infp_lab.stage1.hybrid import EYES, MOUTH

    _, landmarks = _batch(128, b=1)
    half = landmarks.clone()
    half = (half - 0.5) * 0.5 + 0.5  # the same face at half the size
    x = ((torch.arange(128) + 0.5) / 128).view(1, 1, 1, 128).expand(2, 1, 128, 128)  # each pixel's x in [0, 1]
    crops = mouth_crops(x, torch.cat([landmarks, half]))
    assert crops.shape == (2, 1, *MOUTH_CROP)
    for crop, lm in zip(crops, (landmarks[0], half[0])):
        centre = lm[list(MOUTH), 0].mean()
        iod = (lm[list(EYES[0])].mean(0) - lm[list(EYES[1])].mean(0)).norm()
        assert abs(crop[0, :, MOUTH_CROP[1] // 2 - 1: MOUTH_CROP[1] // 2 + 1].mean() - centre) < 0.01
        width = crop[0, 0, -1] - crop[0, 0, 0]
        assert abs(width - MOUTH_CROP_EXTENT[1] * iod * (1 - 1 / MOUTH_CROP[1])) < 0.01
    logits = MouthDiscriminator()(torch.rand(2, 3, 128, 128), torch.cat([landmarks, half]))
    assert logits.shape == (2, 1, MOUTH_CROP[0] // 8, MOUTH_CROP[1] // 8)


def test_region_crops_follow_the_head_roll(monkeypatch):
    """The eye and mouth crops the motion encoder reads are upright: rolling the head 30
    degrees changes them much less than it changes the same crops taken unrotated."""
    from infp_lab.render import PARAM_NAMES, Appearance, project_landmarks, render_frames
    from infp_lab.stage1 import motion_encoder

    params = np.zeros((2, len(PARAM_NAMES)), np.float32)
    params[:, PARAM_NAMES.index("scale")] = 1.0
    params[:, PARAM_NAMES.index("jaw_open")] = 0.6
    params[1, PARAM_NAMES.index("roll")] = 30.0
    face = Appearance()
    frames = torch.from_numpy(render_frames(params, face, 128)).permute(0, 3, 1, 2).float() / 255.0
    landmarks = torch.from_numpy((project_landmarks(params, face, 128) / 128).astype(np.float32))

    def change(crops):
        return [(c[0] - c[1]).abs().mean().item() for c in crops]

    upright = motion_encoder.region_crops(frames, landmarks, 32)
    assert all(c.shape == (2, 3, 32, 32) for c in upright)
    face_frame = motion_encoder.face_frame
    monkeypatch.setattr(motion_encoder, "face_frame",
                        lambda lm: (lambda centre, iod, angle: (centre, iod, torch.zeros_like(angle)))(*face_frame(lm)))
    unrotated = motion_encoder.region_crops(frames, landmarks, 32)
    for kept, fixed in zip(change(upright), change(unrotated)):
        assert kept < 0.8 * fixed, (change(upright), change(unrotated))


def test_save_and_from_pretrained_round_trip(tmp_path):
    torch.manual_seed(0)
    model = HeadImitator(preset("tiny")).eval()
    path = model.save_pretrained(tmp_path / "w.safetensors")
    loaded = HeadImitator.from_pretrained(path)
    frames, landmarks = _batch(128)
    with torch.no_grad():
        a, b = model(frames, landmarks, frames, landmarks), loaded(frames, landmarks, frames, landmarks)
    assert torch.equal(a.image, b.image) and torch.equal(a.landmarks, b.landmarks)
    assert loaded.config == model.config
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        HeadImitator.from_pretrained(tmp_path / "bad.safetensors")
    with pytest.raises(FileNotFoundError):
        HeadImitator.from_pretrained(tmp_path / "missing.safetensors")
    from infp_lab.checkpoint import save_weights

    save_weights(tmp_path / "other.safetensors", {"x": torch.zeros(1)}, "something-else", {})
    with pytest.raises(ValueError, match="expected 'infp-lab/stage1'"):
        HeadImitator.from_pretrained(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match=r"\(B, 3, 128, 128\)"):
        model(torch.rand(1, 3, 64, 64), landmarks[:1], torch.rand(1, 3, 64, 64), landmarks[:1])


def test_pair_dataset_cross_identity_items():
    dataset = FramePairDataset(SAMPLES, size=64, cross_identity=1.0)
    items = [dataset[i] for i in range(12)]
    crossed = [it for it in items if it["cross"]]
    assert crossed, "some items must be cross-identity"
    for it in crossed:
        # the driving frame shows another face, the target is the source's identity
        assert (it["driving"] - it["target"]).abs().mean() > 0.02
    plain = [it for it in (FramePairDataset(SAMPLES, size=64, cross_identity=0.0)[i] for i in range(4))]
    assert all(it["driving_identity"] == it["clip_index"] for it in plain)
    assert all(it["driving_identity"] != it["clip_index"] for it in crossed)
    again = dataset[3]
    assert torch.equal(again["driving"], items[3]["driving"])  # items depend only on the index


def test_open_mouth_pairs_draw_wider_mouths_and_leave_the_default_as_it_was():
    from infp_lab.stage1.hybrid import lip_gap

    def gaps(dataset):
        return np.array([lip_gap(dataset[i]["target_frame_landmarks"].numpy()) for i in range(40)])

    uniform = FramePairDataset(SAMPLES, size=32, cross_identity=0.0)
    weighted = FramePairDataset(SAMPLES, size=32, cross_identity=0.0, open_mouth=1.0)
    assert gaps(weighted).mean() > 1.5 * gaps(uniform).mean()
    off = FramePairDataset(SAMPLES, size=32, cross_identity=0.0, open_mouth=0.0)
    assert all(off[i]["driving_frame"] == uniform[i]["driving_frame"] for i in range(10))
    with pytest.raises(ValueError, match="open_mouth"):
        FramePairDataset(SAMPLES, open_mouth=1.5)


def test_cross_identity_drivers_and_head_targets_share_the_placement():
    from infp_lab.render import Appearance, project_landmarks
    from infp_lab.stage1.data import PLACEMENT, placed

    dataset = FramePairDataset(SAMPLES, size=64, cross_identity=1.0)
    it = next(it for it in (dataset[i] for i in range(12)) if it["cross"])
    clip = dataset.clip(it["clip_index"])
    own = Appearance.from_dict(clip.render_spec["appearance"])
    params = clip.motion["params"][it["driving_frame"]]
    # the head's target: the canonical face with this frame's motion at the clip's placement
    expected = canonical_landmarks(params, own)
    assert np.allclose(it["target_landmarks"].numpy(), expected, atol=1e-6)
    assert not np.allclose(expected, canonical_landmarks(params), atol=1e-3)  # the sample faces are placed apart
    # the driver is another face at the source's placement: its landmarks match the target's pose
    others = [Appearance.from_dict(dataset.clip(i).render_spec["appearance"]) for i in range(len(dataset.clip_paths))]
    driving = it["driving_landmarks"].numpy()
    matches = [o for o in others if np.allclose(project_landmarks(params, placed(o, own), 256) / 256, driving, atol=1e-5)]
    assert matches and matches[0] != own  # another identity...
    assert others[it["driving_identity"]] == matches[0]  # ...the one the item names
    assert any(getattr(matches[0], n) != getattr(own, n) for n in PLACEMENT)
    assert not np.allclose(project_landmarks(params, matches[0], 256) / 256, driving, atol=1e-3)  # ...moved to own's place


def test_invariance_loss_pulls_cross_identity_latents_together():
    from infp_lab.stage1.train import Stage1TrainConfig, _losses

    dataset = FramePairDataset(SAMPLES, size=128, cross_identity=1.0)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(6)])
    assert batch["cross"].any()
    model = HeadImitator(preset("tiny"))
    g = torch.Generator().manual_seed(0)
    plain = _losses(model, batch, Stage1TrainConfig(colour_jitter=False), g)
    losses = _losses(model, batch, Stage1TrainConfig(colour_jitter=False, invariance_weight=2.0), g)
    assert "invariance" not in plain and losses["invariance"] > 0
    assert torch.allclose(losses["total"], plain["total"] + 2.0 * losses["invariance"])
    losses["invariance"].backward()
    assert model.motion_encoder.to_latent[-1].weight.grad.abs().sum() > 0


def test_invariance_loss_per_dimension_weighs_small_dimensions_up():
    """A small, consistent offset in a dimension that hardly varies is what a probe that
    standardises the latent reads: the per-dimension loss sees it, the averaged one hardly."""
    from types import SimpleNamespace

    from infp_lab.stage1.train import invariance_loss

    gen = torch.Generator().manual_seed(0)
    own = torch.stack([torch.randn(16, generator=gen), torch.randn(16, generator=gen) * 0.03], dim=1)
    model = SimpleNamespace(encode_motion=lambda frames, landmarks: own)
    batch = {"cross": torch.ones(16), "target": torch.zeros(16, 3, 8, 8), "target_frame_landmarks": torch.zeros(16, 5, 2)}
    drivers = own + torch.tensor([0.0, 0.15])  # five of the small dimension's standard deviations
    averaged, per_dim = invariance_loss(model, drivers, batch), invariance_loss(model, drivers, batch, per_dim=True)
    assert per_dim > 5.0 and averaged < 0.05
    assert invariance_loss(model, own, batch, per_dim=True) == 0


def _loss_term(term: str, weight: float):
    """An untrained model's losses on two sample pairs with one extra term at `weight`: checks
    that the term is there only with its weight and adds weight * term to the total; returns the
    batch, a function of the target giving the losses, those at the true target, and the
    model's output image."""
    from infp_lab.stage1.train import Stage1TrainConfig, _losses

    dataset = FramePairDataset(SAMPLES, size=128)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(2)])
    model = HeadImitator(preset("tiny")).eval()
    cfg = Stage1TrainConfig(colour_jitter=False, **{f"{term}_weight": weight})

    def losses(target):
        with torch.no_grad():
            return _losses(model, {**batch, "target": target}, cfg, torch.Generator().manual_seed(0))

    base = losses(batch["target"])
    plain = _losses(model, batch, Stage1TrainConfig(colour_jitter=False), torch.Generator().manual_seed(0))
    assert term not in plain and base[term] > 0
    assert torch.allclose(base["total"], plain["total"].detach() + weight * base[term], atol=1e-6)
    with torch.no_grad():
        image = model(batch["source"], batch["source_landmarks"], batch["driving"], batch["driving_landmarks"]).image
    return batch, losses, base, image


def test_region_loss_sees_only_the_eyes_and_mouth():
    batch, losses, base, image = _loss_term("region", 3.0)
    corner, mouth = batch["target"].clone(), batch["target"].clone()
    corner[:, :, :8, :8] = 1 - corner[:, :, :8, :8]  # far from the face
    x, y = (batch["target_frame_landmarks"][:, list(LANDMARK_GROUPS["outer_lip"])].mean(1) * 128).long()[0]
    mouth[0, :, y - 2:y + 3, x - 2:x + 3] = (image[0, :, y - 2:y + 3, x - 2:x + 3] < 0.5).float()  # far from the output
    assert torch.isclose(losses(corner)["region"], base["region"]) and losses(corner)["l1"] > base["l1"]
    assert losses(mouth)["region"] > base["region"] + 10 * (losses(mouth)["l1"] - base["l1"])


def test_mouth_loss_sees_only_the_mouth():
    from infp_lab.stage1.train import Stage1TrainConfig

    batch, losses, base, image = _loss_term("mouth", 4.0)
    far = (image < 0.5).float()  # at least 0.5 from the output, wherever it is
    landmarks = batch["target_frame_landmarks"] * 128
    corner, mouth, eye = (batch["target"].clone() for _ in range(3))
    corner[:, :, :8, :8] = far[:, :, :8, :8]  # far from the face
    for edited, group in ((mouth, "inner_lip"), (eye, "right_eye")):
        x, y = landmarks[0, list(LANDMARK_GROUPS[group])].mean(0).long()
        edited[0, :, y - 2:y + 3, x - 2:x + 3] = far[0, :, y - 2:y + 3, x - 2:x + 3]
    assert torch.isclose(losses(corner)["mouth"], base["mouth"]) and losses(corner)["l1"] > base["l1"]
    assert torch.isclose(losses(eye)["mouth"], base["mouth"])
    assert losses(mouth)["mouth"] > base["mouth"] + 10 * (losses(mouth)["l1"] - base["l1"])
    with pytest.raises(ValueError, match="loss weights must be >= 0"):
        Stage1TrainConfig(mouth_weight=-1.0)


JUDGE = SAMPLES.parents[1] / "weights" / "syncnet_synconv.safetensors"


def _sync_windows(count, seed=0):
    from infp_lab.data.clip import list_clips
    from infp_lab.stage1.data import SyncWindowDataset
    from infp_lab.syncnet.model import SyncNet

    expert = SyncNet.from_pretrained(JUDGE).eval().requires_grad_(False)
    dataset = SyncWindowDataset(list_clips(SAMPLES), 128, expert.config.window, expert.config.crop_size, seed=seed)
    return expert, dataset, torch.utils.data.default_collate([dataset[i] for i in range(count)])


def test_training_with_true_landmarks_draws_at_the_target_frames_own():
    """The diagnostic option: training renders each frame at its true landmarks, not at the
    landmark head's, and validation renders the same way."""
    from infp_lab.stage1.train import Stage1TrainConfig, _losses, evaluate_pairs

    dataset = FramePairDataset(SAMPLES, size=128)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(2)])
    model = HeadImitator(preset("tiny")).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        told = _losses(model, batch, Stage1TrainConfig(colour_jitter=False, true_landmarks=True), g)["_image"]
        plain = _losses(model, batch, Stage1TrainConfig(colour_jitter=False), g)["_image"]
        at_truth = model(batch["source"], batch["source_landmarks"], batch["driving"], batch["driving_landmarks"],
                         target=batch["target_frame_landmarks"]).image
    assert torch.allclose(told, at_truth) and (told - plain).abs().mean() > 1e-4
    scores = [evaluate_pairs(model, [batch], torch.device("cpu"), true_landmarks=flag) for flag in (False, True)]
    assert scores[0]["psnr"] != scores[1]["psnr"]


def test_sync_windows_are_where_the_avatar_speaks():
    from infp_lab.data.audio import audio_features
    from infp_lab.data.clip import load_clip
    from infp_lab.metrics.interaction import is_speaking

    expert, dataset, batch = _sync_windows(6)
    window, k = expert.config.window, dataset.sync_cfg.shifted_negatives
    assert batch["driving"].shape == (6, window, 3, 128, 128) and batch["source"].shape == (6, 3, 128, 128)
    assert batch["crop_matrices"].shape == (6, window, 2, 3) and batch["shifted"].shape == (6, k, window, 320)
    again = dataset[3]
    assert all(torch.equal(again[key], batch[key][3]) for key in again), "an item depends on its index only"
    rng = np.random.default_rng(np.random.SeedSequence([0, 3]))  # the item's own draws: clip, then start
    path = dataset.clip_paths[int(rng.integers(len(dataset.clip_paths)))]
    clip = load_clip(path)
    start = int(rng.choice(dataset.clip(dataset.clip_paths.index(path))["starts"]))
    assert is_speaking(clip.motion["state"])[start:start + window].mean() > 0.5
    assert torch.equal(batch["driving"][3], torch.from_numpy(clip.frames(128, start, start + window)).permute(0, 3, 1, 2) / 255)
    features = audio_features(clip.self_audio, clip.num_frames)
    assert np.allclose(batch["audio"][3].numpy(), features[start:start + window])
    assert not any(np.allclose(shifted.numpy(), features[start:start + window]) for shifted in batch["shifted"][3])


def test_sync_windows_skip_clips_where_the_avatar_never_speaks(tmp_path):
    import shutil

    from infp_lab.data.clip import ClipFormatError
    from infp_lab.stage1.data import SyncWindowDataset

    def copy(name: str, silent: bool) -> Path:
        folder = shutil.copytree(SAMPLES / name, tmp_path / name)
        if silent:
            motion = dict(np.load(folder / "motion.npz"))
            motion["state"] = np.zeros_like(motion["state"])  # silence: the avatar never speaks
            np.savez(folder / "motion.npz", **motion)
        return folder

    silent, speaking = copy("conv0000_a", True), copy("conv0000_b", False)
    dataset = SyncWindowDataset([silent, speaking], 128, 5, (48, 96))
    assert len(dataset.clip(0)["starts"]) == 0 and len(dataset.clip(1)["starts"]) > 0
    landmarks = dataset.clip(1)["landmarks"]
    for index in range(6):  # every item comes from the clip where the avatar speaks
        item = dataset[index]
        assert any(np.array_equal(item["driving_landmarks"].numpy(), landmarks[t:t + 5]) for t in dataset.clip(1)["starts"])
    with pytest.raises(ClipFormatError, match="none of the 1 clips has a window where the avatar speaks"):
        SyncWindowDataset([silent], 128, 5, (48, 96))[0]


def test_sync_expert_loss_prefers_frames_in_time_with_their_audio():
    """Rendering the true frames (a stand-in renderer) scores lower than rendering frames of
    another time under the same audio, and the loss's gradient reaches the rendered pixels:
    those of the whole crop, or with region "mouth" those of the lips and a margin alone."""
    from types import SimpleNamespace

    from infp_lab.stage1.train import Stage1TrainConfig, sync_expert_loss

    expert, _, batch = _sync_windows(12)
    drawn_at = []

    def truthful(source, source_landmarks, driving, driving_landmarks, target=None):
        drawn_at.append(target)
        return SimpleNamespace(image=driving)

    aligned = sync_expert_loss(truthful, expert, batch)
    late = sync_expert_loss(truthful, expert, {**batch, "driving": batch["driving"].roll(1, dims=0)})
    assert aligned < late - 0.2, (aligned, late)
    assert drawn_at[0] is None  # at the landmark head's landmarks unless told the true ones
    assert torch.allclose(sync_expert_loss(truthful, expert, batch, true_landmarks=True), aligned)
    assert torch.equal(drawn_at[-1], batch["driving_landmarks"].flatten(0, 1))
    from infp_lab.stage1.hybrid import mouth_region

    outside = mouth_region(batch["driving_landmarks"].flatten(0, 1), 128).view(12, -1, 1, 128, 128) == 0
    for region in ("crop", "mouth"):
        batch["driving"].requires_grad_(True)
        sync_expert_loss(truthful, expert, batch, region).backward()
        grad = batch["driving"].grad.abs()
        assert grad.sum() > 0
        assert (grad * outside).sum() > 0.1 * grad.sum() if region == "crop" else (grad * outside).sum() == 0
        batch["driving"] = batch["driving"].detach()
    assert all(p.grad is None for p in expert.parameters()), "the expert stays frozen"
    with pytest.raises(ValueError, match="needs a lip-sync expert"):
        Stage1TrainConfig(sync_weight=1.0)
    with pytest.raises(ValueError, match="sync_region"):
        Stage1TrainConfig(sync_weight=1.0, sync_expert=str(JUDGE), sync_region="face")
    with pytest.raises(ValueError, match="sync_windows"):
        Stage1TrainConfig(sync_weight=1.0, sync_expert=str(JUDGE), sync_windows=0)


def _train(args, **kw):
    cmd = [sys.executable, "-m", "infp_lab", "train", "stage1", "--data", str(SAMPLES), "--batch-size", "2",
           "--workers", "0", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    from safetensors.torch import load_file

    steps = ["--steps", "8", "--checkpoint-every", "2"]
    straight = _train([*steps, "--out", str(tmp_path / "a")])
    assert straight.wait(timeout=300) == 0, straight.stdout.read()

    killed = _train([*steps, "--out", str(tmp_path / "b")])
    checkpoint = tmp_path / "b" / "checkpoint.pt"
    deadline = time.time() + 240
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    step = torch.load(checkpoint, weights_only=True)["step"]
    assert step < 8, "the run was killed before it finished"
    resumed = _train([*steps, "--out", str(tmp_path / "b"), "--resume"])
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    a = load_file(str(tmp_path / "a" / "stage1.safetensors"))
    b = load_file(str(tmp_path / "b" / "stage1.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a), "resumed run diverged from the uninterrupted one"

    again = _train([*steps, "--out", str(tmp_path / "a")])  # an existing run without --resume is refused
    assert again.wait(timeout=120) == 2 and "--resume" in again.stdout.read()

    stopped = _train([*steps, "--out", str(tmp_path / "c"), "--stop-at", "3"])  # a schedule trained in two goes
    assert stopped.wait(timeout=300) == 0, stopped.stdout.read()
    assert torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True)["step"] == 3
    finished = _train([*steps, "--out", str(tmp_path / "c"), "--resume"])
    assert finished.wait(timeout=300) == 0, finished.stdout.read()
    c = load_file(str(tmp_path / "c" / "stage1.safetensors"))
    assert all(torch.allclose(a[k], c[k], atol=1e-5) for k in a), "a run stopped and resumed diverged"


def test_fine_tuning_starts_from_given_weights(tmp_path):
    from safetensors.torch import load_file

    start = HeadImitator(preset("tiny"))
    torch.nn.init.normal_(start.motion_encoder.to_latent[-1].weight)  # unlike a fresh model's seed-0 init
    start.save_pretrained(tmp_path / "start.safetensors")
    run = _train(["--steps", "2", "--checkpoint-every", "2", "--lr", "0", "--init", str(tmp_path / "start.safetensors"),
                  "--out", str(tmp_path / "ft")])
    assert run.wait(timeout=300) == 0, run.stdout.read()
    tuned, given = load_file(str(tmp_path / "ft" / "stage1.safetensors")), load_file(str(tmp_path / "start.safetensors"))
    assert all(torch.allclose(tuned[k], given[k]) for k in given), "lr 0 must leave the initial weights as they were"

    mouth = _train(["--steps", "2", "--checkpoint-every", "2", "--lr", "0", "--mouth-from-decoder",
                    "--init", str(tmp_path / "start.safetensors"), "--out", str(tmp_path / "mouth")])
    assert mouth.wait(timeout=300) == 0, mouth.stdout.read()
    assert HeadImitator.from_pretrained(tmp_path / "mouth" / "stage1.safetensors").config.decoder.mouth_from_decoder
    assert not HeadImitator.from_pretrained(tmp_path / "ft" / "stage1.safetensors").config.decoder.mouth_from_decoder

    frozen = _train(["--steps", "2", "--checkpoint-every", "2", "--freeze-motion",
                     "--init", str(tmp_path / "start.safetensors"), "--out", str(tmp_path / "frozen")])
    assert frozen.wait(timeout=300) == 0, frozen.stdout.read()
    tuned = load_file(str(tmp_path / "frozen" / "stage1.safetensors"))
    motion = [k for k in given if k.startswith(("motion_encoder.", "landmark_head."))]
    assert motion and all(torch.equal(tuned[k], given[k]) for k in motion), "the motion latents must not move"
    assert any(not torch.equal(tuned[k], given[k]) for k in given if k.startswith("decoder."))

    teeth = ["--steps", "3", "--checkpoint-every", "1", "--mouth-residual", "--mouth-detail", "2", "--mouth-residual-only",
             "--mouth-gan-weight", "0.1", "--gan-weight", "0.1", "--init", str(tmp_path / "start.safetensors"),
             "--out", str(tmp_path / "teeth")]
    first = _train([*teeth, "--stop-at", "2"])
    assert first.wait(timeout=300) == 0, first.stdout.read()
    state = torch.load(tmp_path / "teeth" / "checkpoint.pt", weights_only=True)
    assert {"mouth_discriminator", "mouth_disc_optimizer", "discriminator", "disc_optimizer"} <= set(state)
    resumed = _train([*teeth, "--resume"])
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    teeth_model = HeadImitator.from_pretrained(tmp_path / "teeth" / "stage1.safetensors")
    assert teeth_model.config.decoder.mouth_residual and teeth_model.decoder.mouth_residual[-1].weight.abs().sum() > 0
    assert teeth_model.decoder.mouth_detail.to_rgb.weight.abs().sum() > 0
    tuned = load_file(str(tmp_path / "teeth" / "stage1.safetensors"))
    assert all(torch.equal(tuned[k], given[k]) for k in given), "only the mouth residual and detail train"
    later = torch.load(tmp_path / "teeth" / "checkpoint.pt", weights_only=True)
    for name in ("mouth_discriminator", "discriminator"):
        moved = any(not torch.equal(later[name][k], state[name][k]) for k in state[name])
        assert later["step"] == 3 and moved, f"the {name} trains on after the resume"

    other = _train(["--steps", "2", "--motion-input", "image", "--init", str(tmp_path / "start.safetensors"),
                    "--out", str(tmp_path / "bad")])
    assert other.wait(timeout=120) == 2 and "another model config" in other.stdout.read()


def test_expert_feature_loss_is_zero_for_the_truth_and_grows_with_the_mouths_difference():
    """The perceptual kind of the sync loss compares the rendered windows with the true ones
    through the expert's visual encoder: rendering the true frames costs nothing, frames of
    another time cost more, and more so the further they are from the truth; its gradient
    reaches the rendered pixels and the expert stays frozen."""
    from types import SimpleNamespace

    from infp_lab.stage1.train import Stage1TrainConfig, sync_expert_loss

    expert, _, batch = _sync_windows(12)
    rendered = {}

    def renderer(source, source_landmarks, driving, driving_landmarks, target=None):
        return SimpleNamespace(image=rendered.get("image", driving))

    exact = sync_expert_loss(renderer, expert, batch, "crop", kind="features")
    assert exact.abs() < 1e-6
    frames = batch["driving"].flatten(0, 1)
    costs = []
    for weight in (0.3, 1.0):  # frames drawn part of the way towards another window's
        rendered["image"] = ((1 - weight) * frames + weight * batch["driving"].roll(1, dims=0).flatten(0, 1))
        costs.append(float(sync_expert_loss(renderer, expert, batch, "crop", kind="features")))
    assert 0.05 < costs[0] < costs[1], costs
    rendered["image"] = frames.clone().requires_grad_(True)
    sync_expert_loss(renderer, expert, {**batch, "driving": batch["driving"].roll(1, dims=0)}, "crop",
                     kind="features").backward()
    assert rendered["image"].grad.abs().sum() > 0
    assert all(p.grad is None for p in expert.parameters()), "the expert stays frozen"
    with pytest.raises(ValueError, match="sync_loss"):
        Stage1TrainConfig(sync_weight=1.0, sync_expert=str(JUDGE), sync_loss="pixels")


def test_sync_loss_fine_tune_moves_the_renderer_only(tmp_path):
    """A fine-tune with the lip-sync expert's loss (its perceptual kind) trains another
    renderer than the same run without it, keeps the motion latents, and records the expert
    and the kind of loss it read."""
    from safetensors.torch import load_file

    start = tmp_path / "start.safetensors"
    HeadImitator(preset("tiny")).save_pretrained(start)
    common = ["--steps", "2", "--checkpoint-every", "2", "--freeze-motion", "--init", str(start)]
    plain = _train([*common, "--out", str(tmp_path / "plain")])
    synced = _train([*common, "--sync-weight", "1", "--sync-expert", str(JUDGE), "--sync-windows", "1",
                     "--sync-loss", "features", "--out", str(tmp_path / "synced")])
    assert plain.wait(timeout=300) == 0, plain.stdout.read()
    assert synced.wait(timeout=300) == 0, synced.stdout.read()
    given, without, tuned = (load_file(str(path)) for path in (start, tmp_path / "plain" / "stage1.safetensors",
                                                                  tmp_path / "synced" / "stage1.safetensors"))
    motion = [k for k in given if k.startswith(("motion_encoder.", "landmark_head."))]
    assert motion and all(torch.equal(tuned[k], given[k]) for k in motion)
    assert any(not torch.equal(tuned[k], without[k]) for k in given if k.startswith("decoder."))
    state = torch.load(tmp_path / "synced" / "checkpoint.pt", weights_only=True)
    assert state["train_config"]["sync_expert"] == str(JUDGE) and state["train_config"]["sync_weight"] == 1
    assert state["train_config"]["sync_loss"] == "features"


@pytest.mark.parametrize("added, value", [("driven_maps", True), ("refine_flow", True), ("mouth_residual", True),
                                          ("mouth_detail", 2)])
def test_fine_tuning_adds_a_decoder_option_without_changing_the_start(tmp_path, added, value):
    from dataclasses import replace

    from infp_lab.stage1.train import init_from

    config = preset("tiny")
    torch.manual_seed(1)
    before = HeadImitator(replace(config, decoder=replace(config.decoder, **{added: type(value)()}))).eval()
    before.save_pretrained(tmp_path / "before.safetensors")
    after = HeadImitator(replace(config, decoder=replace(config.decoder, **{added: value}))).eval()
    init_from(after, tmp_path / "before.safetensors")
    frames, landmarks = _batch(128)
    driving = frames.flip(0)
    with torch.no_grad():
        assert torch.allclose(after(frames, landmarks, driving, landmarks).image,
                              before(frames, landmarks, driving, landmarks).image, atol=1e-6)
    after.save_pretrained(tmp_path / "after.safetensors")
    with pytest.raises(ValueError, match="another model config"):  # the option cannot be dropped again
        init_from(before, tmp_path / "after.safetensors")


def test_flow_correction_warps_the_source_at_full_resolution():
    """The decoder's correction is added to the upsampled flow before the source image is
    warped: it starts at zero, and a constant correction moves the blended-in source by it."""
    import torch.nn.functional as F

    from infp_lab.stage1.decoder import MAX_FLOW_CORRECTION
    from infp_lab.stage1.warping import warp

    decoder = HeadImitator(preset("tiny")).decoder.eval()
    with torch.no_grad():  # blend mask 1: the output is the warped source
        decoder.to_rgb.weight[3].zero_()
        decoder.to_rgb.bias[3] = 30.0
    g = torch.Generator().manual_seed(0)
    features, source = torch.randn(1, 96, 32, 32, generator=g), torch.rand(1, 3, 128, 128, generator=g)
    flow = 0.05 * torch.randn(1, 2, 32, 32, generator=g)
    landmarks = _batch(128)[1][:1]
    with torch.no_grad():
        image, _ = decoder(features, torch.zeros(1, 64), source, flow, landmarks)
        assert torch.allclose(image, warp(source, flow), atol=1e-5)
        decoder.flow_correction[-1].bias.copy_(torch.tensor([float(np.arctanh(0.5)), 0.0]))
        moved, _ = decoder(features, torch.zeros(1, 64), source, flow, landmarks)
    shifted = F.interpolate(flow, size=(128, 128), mode="bilinear", align_corners=False)
    shifted = shifted + torch.tensor([0.5 * MAX_FLOW_CORRECTION, 0.0]).view(1, 2, 1, 1)
    assert torch.allclose(moved, warp(source, shifted), atol=1e-5)
    assert (moved - image).abs().mean() > 0.01


def test_ddp_on_cpu_with_two_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "infp_lab", "train", "stage1", "--data", str(SAMPLES), "--out", str(tmp_path / "ddp"),
           "--steps", "3", "--checkpoint-every", "3", "--batch-size", "2", "--workers", "0", "--device", "cpu"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    state = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    assert HeadImitator.from_pretrained(tmp_path / "ddp" / "stage1.safetensors") is not None


def test_export_and_evaluate(tmp_path):
    from infp_lab.export import export_checkpoint
    from infp_lab.stage1.evaluate import evaluate_stage1

    run = _train(["--steps", "2", "--checkpoint-every", "2", "--out", str(tmp_path / "r")])
    assert run.wait(timeout=300) == 0
    exported = export_checkpoint(tmp_path / "r" / "checkpoint.pt", tmp_path / "e.safetensors")
    from safetensors.torch import load_file

    ema = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)["ema"]
    assert all(torch.equal(v, ema[k].to(v.dtype)) for k, v in load_file(str(exported)).items())
    report = evaluate_stage1(exported, SAMPLES, split=None, pairs_per_clip=2)
    assert torch.is_grad_enabled(), "evaluation must not switch gradients off for the caller"
    assert report["mouth_composite"] is False  # as the weights say
    for value in (report["self_reenactment"]["psnr"], report["cross_reenactment"]["landmark_error"],
                  report["probes"]["params_from_motion_latent"]["r2_mean"]):
        assert np.isfinite(value)
    assert report["probes"]["identity_from_motion_latent"]["chance"] == pytest.approx(1 / 6)
    assert report["probes"]["identities"] == 6  # every sample identity rendered with one shared motion pool
    assert report["probes"]["placement"] == "shared"
    own = report["probes"]["own_placement"]
    assert np.isfinite(own["params_from_motion_latent"]["r2_mean"]) and 0 <= own["identity_from_motion_latent"]["accuracy"] <= 1


def test_bad_training_inputs(tmp_path):
    from infp_lab.cli import main

    assert main(["train", "stage1", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert main(["train", "stage1", "--data", str(SAMPLES), "--out", str(tmp_path / "o"), "--preset", "huge"]) == 2
    assert main(["train", "stage1", "--data", str(SAMPLES), "--out", str(tmp_path / "o"), "--freeze-motion"]) == 2
    start = tmp_path / "start.safetensors"
    HeadImitator(preset("tiny")).save_pretrained(start)
    assert main(["train", "stage1", "--data", str(SAMPLES), "--out", str(tmp_path / "o"), "--init", str(start),
                 "--mouth-residual-only"]) == 2  # without --mouth-residual there is no residual to train
    assert main(["train", "stage1", "--data", str(SAMPLES), "--out", str(tmp_path / "o"), "--sync-weight", "1"]) == 2
    assert main(["train", "stage1", "--data", str(SAMPLES), "--out", str(tmp_path / "o"), "--sync-weight", "1",
                 "--sync-expert", str(start)]) == 2  # stage-1 weights are no lip-sync expert
    assert main(["train", "stage1", "--data", str(SAMPLES), "--out", str(tmp_path / "o"), "--open-mouth", "1.5"]) == 2
    assert not (tmp_path / "o").exists()
    if not torch.cuda.is_available():
        assert main(["train", "stage1", "--data", str(SAMPLES), "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
    with pytest.raises(ValueError, match="unknown stage-1 preset"):
        preset("huge")
    assert set(PRESETS) >= {"tiny", "paper"}


def test_param_head_targets_show_the_pose_at_the_clips_placement():
    """The param head learns the motion parameters with the pose as the frame shows it."""
    from infp_lab.data.clip import load_clip
    from infp_lab.render import Appearance
    from infp_lab.stage1.data import param_statistics, shown_params

    clip = load_clip(SAMPLES / "conv0001_a", load_audio_tracks=False)
    face, params, names = Appearance.from_dict(clip.render_spec["appearance"]), clip.motion["params"], clip.param_names
    shown = shown_params(clip)
    expected = {"yaw": params[:, 9] + face.base_yaw, "pitch": params[:, 10] + face.base_pitch,
                "tx": params[:, 12] + face.centre_x, "ty": params[:, 13] + face.centre_y,
                "scale": params[:, 14] * face.head_scale}
    for name, value in expected.items():
        assert np.allclose(shown[:, names.index(name)], value, atol=1e-6), name
    assert face.base_yaw != 0 and np.array_equal(shown[:, :9], params[:, :9])  # expression as it is
    got_names, mean, std = param_statistics([SAMPLES / "conv0001_a"])
    assert got_names == names and np.allclose(mean, shown.mean(0), atol=1e-5) and np.allclose(std, shown.std(0), atol=1e-5)
    item = FramePairDataset(SAMPLES, param_names=names)[3]
    assert item["has_params"] == 1 and "params" not in FramePairDataset(SAMPLES)[3]
    clip_item = shown_params(load_clip(FramePairDataset(SAMPLES).clip_paths[item["clip_index"]], load_audio_tracks=False))
    assert np.allclose(item["params"].numpy(), clip_item[item["driving_frame"]])


def test_param_loss_reads_the_parameters_from_the_driving_latent(tmp_path):
    from dataclasses import replace

    from infp_lab.render import PARAM_NAMES
    from infp_lab.stage1.train import Stage1TrainConfig, _losses, fit_param_head

    model = HeadImitator(replace(preset("tiny"), param_names=PARAM_NAMES))
    with pytest.raises(ValueError, match="no param head"):
        HeadImitator(preset("tiny")).motion_params(torch.zeros(1, 64))
    dataset = FramePairDataset(SAMPLES, size=128, param_names=PARAM_NAMES)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    g = torch.Generator().manual_seed(0)
    plain = _losses(model, batch, Stage1TrainConfig(colour_jitter=False), g)
    losses = _losses(model, batch, Stage1TrainConfig(colour_jitter=False, param_weight=3.0), g)
    assert "params" not in plain and torch.allclose(losses["total"], plain["total"] + 3.0 * losses["params"])
    with torch.no_grad():
        latent = model.encode_motion(batch["driving"], batch["driving_landmarks"])
        by_hand = ((model.motion_params(latent) - batch["params"]) ** 2).mean()  # mean 0, std 1 here
    assert torch.isclose(losses["params"], by_hand, rtol=1e-4)
    losses["params"].backward()
    assert model.motion_encoder.to_latent[-1].weight.grad.abs().sum() > 0
    unknown = _losses(model, {**batch, "has_params": torch.zeros(4, dtype=torch.long)},
                      Stage1TrainConfig(colour_jitter=False, param_weight=3.0), g)
    assert "params" not in unknown  # clips without parameters (real video) add nothing

    # A fine-tune of a model without the head starts it at the least-squares readout.
    before = ((model.motion_params(latent.detach()) - batch["params"]) ** 2).mean()
    r2 = fit_param_head(model, dataset.clip_paths, frames_per_clip=40)
    with torch.no_grad():
        after = ((model.motion_params(latent) - batch["params"]) ** 2).mean()
    assert 0 < r2 <= 1 and after < before
    model.save_pretrained(tmp_path / "with_head.safetensors")
    again = HeadImitator.from_pretrained(tmp_path / "with_head.safetensors")
    assert again.config.param_names == tuple(PARAM_NAMES)
    assert torch.allclose(again.motion_params(latent), model.motion_params(latent))


def test_param_weight_trains_a_head_from_weights_without_one(tmp_path):
    start = HeadImitator(preset("tiny"))
    start.save_pretrained(tmp_path / "start.safetensors")
    run = _train(["--steps", "2", "--checkpoint-every", "2", "--param-weight", "1",
                  "--init", str(tmp_path / "start.safetensors"), "--out", str(tmp_path / "p")])
    assert run.wait(timeout=300) == 0, run.stdout.read()
    tuned = HeadImitator.from_pretrained(tmp_path / "p" / "stage1.safetensors")
    assert tuned.param_head is not None and tuned.param_head.std.min() > 0
    renderer = _train(["--steps", "2", "--checkpoint-every", "2", "--freeze-motion",  # a later fine-tune keeps it
                       "--init", str(tmp_path / "p" / "stage1.safetensors"), "--out", str(tmp_path / "r")])
    assert renderer.wait(timeout=300) == 0, renderer.stdout.read()
    kept = HeadImitator.from_pretrained(tmp_path / "r" / "stage1.safetensors")
    assert torch.equal(kept.param_head.linear.weight, tuned.param_head.linear.weight)


def test_hybrid_region_points_read_the_brows_and_start_from_contour_weights(tmp_path):
    from dataclasses import replace

    from infp_lab.stage1.train import init_from

    config = preset("tiny")
    regions = replace(config, motion=replace(config.motion, points="regions"))
    torch.manual_seed(2)
    contour_model = HeadImitator(config).eval()
    contour_model.save_pretrained(tmp_path / "contour.safetensors")
    regions_model = HeadImitator(regions).eval()
    init_from(regions_model, tmp_path / "contour.safetensors")  # the region branch starts silent
    frames, landmarks = _batch(128)
    raised = landmarks.clone()
    brows = list(LANDMARK_GROUPS["right_brow"] + LANDMARK_GROUPS["left_brow"])
    raised[:, brows, 1] -= 0.02  # the mask hides the brows: only their points can tell
    with torch.no_grad():
        start = regions_model.encode_motion(frames, landmarks)
        assert torch.allclose(start, contour_model.encode_motion(frames, landmarks), atol=1e-6)
        assert torch.allclose(contour_model.encode_motion(frames, raised), contour_model.encode_motion(frames, landmarks))
        regions_model.motion_encoder.region_points[-1].weight.normal_(std=0.1)
        assert (regions_model.encode_motion(frames, raised) - regions_model.encode_motion(frames, landmarks)).abs().max() > 1e-3
    regions_model.save_pretrained(tmp_path / "regions.safetensors")
    assert HeadImitator.from_pretrained(tmp_path / "regions.safetensors").config.motion.points == "regions"
    with pytest.raises(ValueError, match="another model config"):  # the points cannot be dropped again
        init_from(contour_model, tmp_path / "regions.safetensors")
    with pytest.raises(ValueError, match="hybrid points"):
        HeadImitator(replace(config, motion=replace(config.motion, points="nose")))

    from infp_lab.stage1.train import REGION_BRANCH_LR_SCALE, parameter_groups

    groups = parameter_groups(regions_model)
    assert [g["lr_scale"] for g in groups] == [1.0, REGION_BRANCH_LR_SCALE]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in regions_model.motion_encoder.region_points.parameters()}
    assert len(parameter_groups(contour_model)) == 1
    run = _train(["--steps", "2", "--checkpoint-every", "2", "--hybrid-points", "regions",
                  "--init", str(tmp_path / "contour.safetensors"), "--out", str(tmp_path / "ft")])
    assert run.wait(timeout=300) == 0, run.stdout.read()
    tuned = HeadImitator.from_pretrained(tmp_path / "ft" / "stage1.safetensors")
    assert tuned.config.motion.points == "regions"
    assert tuned.motion_encoder.region_points[-1].weight.abs().max() > 0, "the branch must learn"


def test_encoder_probe_identity_adversary_parts():
    """scripts/stage1_encoder_probe.py's adversary: the look it reads leaves out where the head
    sits, differs between identities, and its gradient reaches the encoder reversed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("encoder_probe", SAMPLES.parents[1] / "scripts" / "stage1_encoder_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    dataset = FramePairDataset(SAMPLES, size=64)
    looks = probe.appearance_features(dataset)
    assert looks.shape[0] == len(dataset.clip_paths) and torch.isfinite(looks).all()
    assert torch.allclose(looks.mean(dim=0), torch.zeros(looks.shape[1]), atol=1e-5)
    assert (torch.cdist(looks, looks) + torch.eye(len(looks)) * 1e3).min() > 0.1  # every face reads apart
    clip = dataset.clip(0)
    clip.render_spec["appearance"]["centre_x"] += 0.1  # the placement is not part of the look
    clip.render_spec["appearance"]["base_yaw"] += 20.0
    assert torch.allclose(probe.appearance_features(dataset), looks)
    x = torch.ones(3, requires_grad=True)
    probe.GradientReversal.apply(x, 0.5).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))


def test_encoder_reads_points_given_apart_from_the_crops():
    """MotionEncoder(points=...) reads the point MLPs from other landmarks and leaves the crops
    where the frame's own landmarks put them."""
    from dataclasses import replace

    config = preset("tiny")
    torch.manual_seed(3)
    model = HeadImitator(replace(config, motion=replace(config.motion, points="regions"))).eval()
    model.motion_encoder.region_points[-1].weight.data.normal_(std=0.1)
    frames, landmarks = _batch(128)
    moved = landmarks.clone()
    moved[:, list(LANDMARK_GROUPS["mouth"]), 1] += 0.02  # a wider open mouth, in the points only
    encoder = model.motion_encoder
    with torch.no_grad():
        assert torch.equal(encoder(frames, landmarks, points=landmarks), model.encode_motion(frames, landmarks))
        mixed = encoder(frames, landmarks, points=moved)
        by_parts = encoder.to_latent(torch.cat(encoder.crop_parts(frames, landmarks) + [encoder.point_part(moved)], 1))
        assert torch.allclose(mixed, by_parts, atol=1e-6)
        assert not torch.allclose(mixed, model.encode_motion(frames, landmarks), atol=1e-5)
        assert not torch.allclose(mixed, model.encode_motion(frames, moved), atol=1e-5)  # the crops did not move


def test_encoder_probe_rest_reference_moves_points_onto_the_canonical_face():
    """scripts/stage1_encoder_probe.py --reference rest: a driving frame's landmarks, moved by
    the shown face's offsets from the canonical face at rest, land on the landmark head's
    targets (the canonical face with the same motion), for the clip's own face and for a
    cross-identity driver."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("encoder_probe", SAMPLES.parents[1] / "scripts" / "stage1_encoder_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    dataset = FramePairDataset(SAMPLES, size=64, cross_identity=0.5, seed=1)
    offsets = probe.RestOffsets(dataset)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(24)])
    assert 0 < batch["cross"].sum() < len(batch["cross"])
    moved = batch["driving_landmarks"] + offsets(batch["driving_identity"], batch["clip_index"])
    error = (moved - batch["target_landmarks"]).norm(dim=-1).mean(dim=-1)
    raw = (batch["driving_landmarks"] - batch["target_landmarks"]).norm(dim=-1).mean(dim=-1)
    # not exactly: a robot's or a cat's face moves its points by other amounts than the canonical face
    assert (error < raw / 2).all() and error.mean() < raw.mean() / 5


def test_identity_sources_references_move_the_points_as_documented():
    """scripts/stage1_identity_sources.py: relative to the face at rest, a human face's points land
    near the canonical face with the same motion; the noisy rest is off by the asked mean length."""
    import importlib.util

    from infp_lab.data.clip import list_clips, load_clip
    from infp_lab.stage1.data import CANONICAL_FACE, canonical_landmarks
    from infp_lab.stage1.hybrid import interocular

    spec = importlib.util.spec_from_file_location("sources", SAMPLES.parents[1] / "scripts" / "stage1_identity_sources.py")
    sources = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sources)
    clip = next(c for c in (load_clip(p, load_audio_tracks=False) for p in list_clips(SAMPLES))
                if c.render_spec["appearance"]["species"] == "human")
    pool = clip.motion["params"][:3]
    canonical = sources.rendered_face(pool, CANONICAL_FACE, 64)
    inputs, error = sources.probe_inputs(clip, pool, 64, pool.std(axis=0) + 1e-6, canonical, None, (0.01,))
    assert error is None and set(inputs) >= {"identity", "canonical", "transferred", "portrait", "mean", "noise 0.01"}
    canonical = torch.from_numpy(canonical_landmarks(pool, CANONICAL_FACE).astype(np.float32))
    iod = interocular(canonical)
    moved, own = inputs["transferred"][1], inputs["identity"][1]
    assert ((moved - canonical).norm(dim=-1).mean(dim=-1) < 0.2 * (own - canonical).norm(dim=-1).mean(dim=-1)).all()
    off = (inputs["noise 0.01"][1] - moved).norm(dim=-1).mean(dim=-1) / iod
    assert torch.allclose(off, torch.full_like(off, 0.01), rtol=0.25)


def test_identity_subspace_projection_removes_a_shared_offset():
    """scripts/stage1_identity_subspace.py: with identities offset along one shared direction,
    the first direction found is that one, removing it leaves every identity at the same place,
    and removing none gives the latents back."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("identity_subspace",
                                                  SAMPLES.parents[1] / "scripts" / "stage1_identity_subspace.py")
    subspace = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(subspace)
    rng = np.random.default_rng(0)
    identities, motions, dim = 10, 40, 6
    motion = rng.normal(size=(motions, dim))
    shared = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    offsets = rng.normal(size=(identities, 1)) * shared
    latents = (motion[None] + offsets[:, None]).reshape(-1, dim) + rng.normal(scale=1e-3, size=(identities * motions, dim))
    mean, whiten, directions = subspace.identity_directions(latents, identities)
    found = np.linalg.inv(whiten) @ directions[:, 0]
    assert abs(found @ shared) / np.linalg.norm(found) > 0.99
    removed = subspace.project(latents, mean, whiten, directions[:, :1]).reshape(identities, motions, dim)
    assert np.abs(removed - removed.mean(axis=0)).max() < 0.01  # what told the identities apart is gone
    assert np.allclose(subspace.project(latents, mean, whiten, directions[:, :0]), latents)


@pytest.mark.parametrize("flag, expected", [([], None), (["--mouth-composite"], True), (["--no-mouth-composite"], False)])
def test_eval_commands_pass_the_mouth_composite_on(tmp_path, monkeypatch, flag, expected):
    """`infp-lab eval stage1 / stage2 --mouth-composite` reaches the evaluators (default: the weights')."""
    import infp_lab.stage1.evaluate as stage1_evaluate
    import infp_lab.stage2.evaluate as stage2_evaluate
    from infp_lab.cli import main

    seen = {}

    def fake_stage1(*args, **kwargs):
        seen["stage1"] = kwargs["mouth_composite"]
        return {}

    def fake_stage2(*args, **kwargs):
        seen["stage2"] = kwargs["mouth_composite"]
        return {}, []

    monkeypatch.setattr(stage1_evaluate, "evaluate_stage1", fake_stage1)
    monkeypatch.setattr(stage2_evaluate, "evaluate_stage2", fake_stage2)
    files = ["--data", "d", "--out", str(tmp_path / "r.json")]
    assert main(["eval", "stage1", "--ckpt", "w", *files, *flag]) == 0
    assert main(["eval", "stage2", "--ckpt", "w", "--stage1", "w1", "--syncnet", "s", "--train-data", "t",
                 *files, *flag]) == 0
    assert seen == {"stage1": expected, "stage2": expected}
