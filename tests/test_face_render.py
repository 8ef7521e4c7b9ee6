"""The SynConv face model and rasteriser (design.md section 3.1, "Faces"): output sanity,
landmark layout and semantics, determinism, any size, and clear errors on bad input."""

import dataclasses
import json

import numpy as np
import pytest

from infp_lab.render import (LANDMARK_GROUPS, NEUTRAL_PARAMS, NUM_LANDMARKS, PARAM_NAMES,
                             Appearance, project_landmarks, render_frame, render_frames,
                             sample_appearance)

P = {name: i for i, name in enumerate(PARAM_NAMES)}
TYPICAL = {"jaw_open": (0, 1), "smile": (-0.5, 1), "lip_round": (0, 1), "lip_press": (0, 1),
           "blink_left": (0, 1), "blink_right": (0, 1), "brow_raise": (-1, 1),
           "gaze_x": (-1, 1), "gaze_y": (-1, 1), "yaw": (-25, 25), "pitch": (-15, 15),
           "roll": (-10, 10), "tx": (-0.05, 0.05), "ty": (-0.05, 0.05), "scale": (0.9, 1.1)}
LOW = np.array([TYPICAL[n][0] for n in PARAM_NAMES])
HIGH = np.array([TYPICAL[n][1] for n in PARAM_NAMES])


def params(**values) -> np.ndarray:
    p = NEUTRAL_PARAMS.copy()
    for name, value in values.items():
        p[P[name]] = value
    return p


def appearances():
    """Frontal and side faces of every species."""
    return [sample_appearance(np.random.default_rng(seed), species, side)
            for seed, (species, side) in enumerate(
                [("human", False), ("human", True), ("human", None), ("cat", False),
                 ("cat", True), ("robot", False), ("robot", True)])]


def luminance(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.3, 0.59, 0.11], np.float32)


def test_constants_and_layout():
    assert len(PARAM_NAMES) == 15 and PARAM_NAMES[0] == "jaw_open" and PARAM_NAMES[-1] == "scale"
    assert NEUTRAL_PARAMS.shape == (15,) and NEUTRAL_PARAMS.dtype == np.float32
    assert NEUTRAL_PARAMS[P["scale"]] == 1 and NEUTRAL_PARAMS.sum() == 1
    sizes = {"jaw": 17, "right_brow": 5, "left_brow": 5, "nose": 9, "right_eye": 6, "left_eye": 6,
             "outer_lip": 12, "inner_lip": 8, "iris": 2, "right_eyelid_extra": 4,
             "left_eyelid_extra": 4, "mouth_interior": 8}
    for name, n in sizes.items():
        assert len(LANDMARK_GROUPS[name]) == n, name
    assert LANDMARK_GROUPS["contour"] == LANDMARK_GROUPS["jaw"]
    assert LANDMARK_GROUPS["jaw"] == tuple(range(17))
    assert LANDMARK_GROUPS["inner_lip"] == tuple(range(60, 68))
    covered = sorted(i for name in sizes for i in LANDMARK_GROUPS[name])
    assert covered == list(range(NUM_LANDMARKS))
    assert set(LANDMARK_GROUPS["eyes"]) >= set(LANDMARK_GROUPS["iris"])
    assert set(LANDMARK_GROUPS["mouth"]) >= set(LANDMARK_GROUPS["mouth_interior"])


@pytest.mark.parametrize("size", [64, 128])
def test_render_is_not_blank(size):
    for app in appearances():
        img = render_frame(params(jaw_open=0.5, smile=0.3), app, size)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
        assert img.std() > 20
        # the face differs from the background around it
        centre = img[size // 3: 2 * size // 3, size // 3: 2 * size // 3].astype(float)
        corner = img[: size // 8, : size // 8].astype(float).mean((0, 1))
        assert np.abs(centre - corner).mean() > 10


def test_landmarks_inside_frame_for_typical_motion():
    rng = np.random.default_rng(0)
    for seed in range(40):
        app = sample_appearance(np.random.default_rng(100 + seed), side=seed % 3 == 0)
        motion = rng.uniform(LOW, HIGH, size=(64, len(PARAM_NAMES)))
        motion[:8] = np.where(rng.random((8, len(PARAM_NAMES))) < 0.5, LOW, HIGH)  # corners
        lms = project_landmarks(motion, app, 128)
        assert lms.shape == (64, NUM_LANDMARKS, 2) and lms.dtype == np.float32
        assert lms.min() >= 0 and lms.max() <= 128, (seed, app.species, app.base_yaw)
        single = project_landmarks(motion[5], app, 128)
        np.testing.assert_allclose(single, lms[5], atol=1e-4)


def test_pose_and_gaze_directions():
    app = Appearance()
    neutral = project_landmarks(NEUTRAL_PARAMS, app, 256)
    turned = project_landmarks(params(yaw=20), app, 256)
    nod = project_landmarks(params(pitch=10), app, 256)
    roll = project_landmarks(params(roll=10), app, 256)
    gaze = project_landmarks(params(gaze_x=1, gaze_y=1), app, 256)
    brows = project_landmarks(params(brow_raise=1), app, 256)
    smile = project_landmarks(params(smile=1), app, 256)
    nose_rel = lambda lm: lm[30] - lm[27]  # noqa: E731
    assert nose_rel(turned)[0] > nose_rel(neutral)[0] + 2           # nose toward image right
    assert nod[30, 1] - nod[27, 1] > neutral[30, 1] - neutral[27, 1]  # chin down: nose longer
    assert roll[45, 1] > roll[36, 1] + 5                             # clockwise: right side down
    assert (gaze[68] - neutral[68] > 1).all() and (gaze[69] - neutral[69] > 1).all()
    assert (brows[17:27, 1] < neutral[17:27, 1] - 2).all()
    assert smile[48, 1] < neutral[48, 1] - 2 and smile[54, 1] < neutral[54, 1] - 2
    assert smile[54, 0] - smile[48, 0] > neutral[54, 0] - neutral[48, 0] + 2
    # the identity's base yaw is added to the motion yaw
    side = Appearance(base_yaw=20)
    np.testing.assert_allclose(project_landmarks(NEUTRAL_PARAMS, side, 256), turned, atol=1e-3)


def test_jaw_open_opens_the_mouth_in_landmarks_and_pixels():
    for app in appearances():
        app = dataclasses.replace(app, beard="none")  # a dark beard would hide the count
        closed_p, open_p = params(), params(jaw_open=1.0)
        closed, opened = (project_landmarks(p, app, 160) for p in (closed_p, open_p))
        gap = lambda lm: lm[66, 1] - lm[62, 1]  # noqa: E731
        assert gap(closed) < 1.0 and gap(opened) > gap(closed) + 5, app.species
        assert opened[8, 1] > closed[8, 1] + 3                       # chin drops
        assert opened[82, 1] > opened[79, 1]                         # lower teeth below upper
        x0, y0 = np.floor(opened[48:68].min(0)).astype(int) - 2
        x1, y1 = np.ceil(opened[48:68].max(0)).astype(int) + 3
        dark = [(luminance(render_frame(p, app, 160)[y0:y1, x0:x1]) < 50).sum()
                for p in (closed_p, open_p)]
        assert dark[1] > dark[0] + 20, (app.species, dark)


def test_lip_press_and_round():
    app = Appearance()
    opened = project_landmarks(params(jaw_open=0.6), app, 256)
    pressed = project_landmarks(params(jaw_open=0.6, lip_press=1.0), app, 256)
    assert pressed[66, 1] - pressed[62, 1] < 0.2 * (opened[66, 1] - opened[62, 1])
    neutral = project_landmarks(NEUTRAL_PARAMS, app, 256)
    rounded = project_landmarks(params(lip_round=1.0), app, 256)
    assert rounded[54, 0] - rounded[48, 0] < 0.8 * (neutral[54, 0] - neutral[48, 0])


def test_blink_closes_the_eyelids():
    for app in appearances():
        open_ = project_landmarks(NEUTRAL_PARAMS, app, 256)
        right = project_landmarks(params(blink_right=1.0), app, 256)
        left = project_landmarks(params(blink_left=1.0), app, 256)
        aperture = lambda lm, up, low: (lm[list(low), 1] - lm[list(up), 1]).mean()  # noqa: E731
        r_eye, l_eye = ((37, 38, 70, 71), (41, 40, 73, 72)), ((43, 44, 74, 75), (47, 46, 77, 76))
        assert aperture(open_, *r_eye) > 3 and aperture(open_, *l_eye) > 3
        assert aperture(right, *r_eye) < 0.1 * aperture(open_, *r_eye)
        assert aperture(right, *l_eye) == pytest.approx(aperture(open_, *l_eye), abs=1e-3)
        assert aperture(left, *l_eye) < 0.1 * aperture(open_, *l_eye)
        assert left[45, 0] > left[36, 0]  # the avatar's left eye is on the image right
    # in pixels: a blink hides the bright eye whites of a human
    app = Appearance()
    lm = project_landmarks(NEUTRAL_PARAMS, app, 384)
    x0, y0 = np.floor(lm[36:48].min(0)).astype(int) - 2
    x1, y1 = np.ceil(lm[36:48].max(0)).astype(int) + 3
    bright = [(luminance(render_frame(p, app, 384)[y0:y1, x0:x1]) > 200).sum()
              for p in (NEUTRAL_PARAMS, params(blink_left=1.0, blink_right=1.0))]
    assert bright[0] > 60 and bright[1] < 0.1 * bright[0]


def test_determinism_and_sequences():
    app = sample_appearance(np.random.default_rng(7))
    assert sample_appearance(np.random.default_rng(7)) == app
    motion = np.random.default_rng(1).uniform(LOW, HIGH, size=(4, len(PARAM_NAMES)))
    first = render_frames(motion, app, 96)
    from infp_lab.render import face_model, face_renderer
    face_model.face_geometry.cache_clear()
    face_renderer._background.cache_clear()
    face_renderer._palette.cache_clear()
    second = np.stack([render_frame(p, app, 96) for p in motion])
    assert first.shape == (4, 96, 96, 3) and first.tobytes() == second.tobytes()
    assert np.abs(np.diff(first.astype(np.int16), axis=0)).mean() > 0.5


@pytest.mark.parametrize("size", [16, 17, 33, 100, 257])
def test_any_size(size):
    app = sample_appearance(np.random.default_rng(size), side=True)
    img = render_frame(params(jaw_open=0.4, yaw=10), app, size)
    assert img.shape == (size, size, 3) and img.std() > 5
    lm = project_landmarks(params(jaw_open=0.4, yaw=10), app, size)
    assert lm.min() >= 0 and lm.max() <= size


def test_appearance_sampling_and_json_round_trip():
    for seed in range(30):
        app = sample_appearance(np.random.default_rng(seed))
        back = Appearance.from_dict(json.loads(json.dumps(app.to_dict())))
        assert back == app and hash(back) == hash(app)
    species = {sample_appearance(np.random.default_rng(s)).species for s in range(60)}
    assert species == {"human", "cat", "robot"}
    for seed in range(20):
        side = sample_appearance(np.random.default_rng(seed), "human", side=True)
        front = sample_appearance(np.random.default_rng(seed), "robot", side=False)
        assert 25 <= abs(side.base_yaw) <= 45 and abs(front.base_yaw) <= 8


def test_bad_input_raises_clear_errors():
    app = Appearance()
    with pytest.raises(ValueError, match="params must have shape"):
        render_frame(np.zeros(14), app, 64)
    with pytest.raises(ValueError, match="params must have shape"):
        project_landmarks(np.zeros((3, 16)), app, 64)
    with pytest.raises(ValueError, match="NaN"):
        render_frame(params(jaw_open=np.nan), app, 64)
    with pytest.raises(ValueError, match="size must be an int >= 16"):
        render_frame(NEUTRAL_PARAMS, app, 15)
    with pytest.raises(ValueError, match="size must be an int >= 16"):
        project_landmarks(NEUTRAL_PARAMS, app, 8)
    with pytest.raises(ValueError, match="render_frames"):
        render_frame(np.tile(NEUTRAL_PARAMS, (2, 1)), app, 64)
    with pytest.raises(ValueError, match="render_frame"):
        render_frames(NEUTRAL_PARAMS, app, 64)
    with pytest.raises(ValueError, match="unknown species"):
        sample_appearance(np.random.default_rng(0), species="dog")
    with pytest.raises(ValueError, match="species"):
        Appearance(species="dog")
    with pytest.raises(ValueError, match="unknown Appearance fields"):
        Appearance.from_dict({"speciez": "cat"})
