"""Real-video preparation (design.md section 3.2) on a synthetic talking-face video made
from scikit-image's astronaut photo (a real face shipped inside the package)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mediapipe")

from infp_lab.data.audio import SAMPLE_RATE  # noqa: E402
from infp_lab.data.clip import load_clip  # noqa: E402
from infp_lab.data.face_mesh import (  # noqa: E402
    MEDIAPIPE_TO_LAYOUT, FaceMeshDetector, detect_layout_landmarks, to_layout)
from infp_lab.data.prepare import PrepareError, prepare_video, prepare_videos  # noqa: E402
from infp_lab.render.face_model import LANDMARK_GROUPS  # noqa: E402
from infp_lab.render.video import write_video  # noqa: E402

SECONDS, CANVAS = 2.4, 384
FACE = np.array([224.0, 125.0])  # face centre in the astronaut photo (on the nose)
# the pupils and the mouth centre in the photo, checked by eye on an enlarged picture
RIGHT_EYE, LEFT_EYE, MOUTH = np.array([204.0, 102.0]), np.array([246.0, 104.0]), np.array([223.0, 141.0])
VOICED = (0.8, 1.6)  # seconds with the own voice on


def motion(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale (T,) and the face centre on the canvas (T, 2) at times t: the face pans and grows 17 %."""
    scale = 0.9 + 0.15 * t / SECONDS
    centre = np.stack([192 + 30 * np.sin(2 * np.pi * t / SECONDS), 190 - 15 * np.cos(2 * np.pi * t / SECONDS)], 1)
    return scale, centre


def tone(on: tuple[float, float], seconds: float = SECONDS) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    voice = 0.3 * np.sin(2 * np.pi * 180 * t) + 0.1 * np.sin(2 * np.pi * 540 * t)
    return (voice * ((t >= on[0]) & (t < on[1]))).astype(np.float32)


def face_video(path, fps: int = 25, audio: bool = True, blank: tuple[float, float] = (0.0, 0.0)):
    import cv2
    from skimage import data

    photo = data.astronaut()
    t = np.arange(int(SECONDS * fps)) / fps
    scale, centre = motion(t)
    frames = []
    for when, s, c in zip(t, scale, centre):
        if blank[0] <= when < blank[1]:  # the face leaves the picture
            frames.append(np.full((CANVAS, CANVAS, 3), 128, np.uint8))
            continue
        matrix = np.array([[s, 0, c[0] - s * FACE[0]], [0, s, c[1] - s * FACE[1]]])
        frames.append(cv2.warpAffine(photo, matrix, (CANVAS, CANVAS), flags=cv2.INTER_AREA,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128)))
    return write_video(path, frames, fps=fps, audio=tone(VOICED) if audio else None)


def flat_video(path, seconds: float, audio: bool = True):
    frames = [np.full((96, 96, 3), 90 + i % 3, np.uint8) for i in range(int(seconds * 25))]
    return write_video(path, frames, fps=25, audio=tone((0.0, seconds), seconds) if audio else None)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare")
    path = prepare_video(face_video(root / "talk.mp4"), root / "clips", size=128)
    return path, load_clip(path)


def test_mapping_is_one_table_of_86_points():
    assert len(MEDIAPIPE_TO_LAYOUT) == 86
    points = np.random.default_rng(0).uniform(0, 100, (2, 478, 2))
    assert to_layout(points).shape == (2, 86, 2)
    assert np.allclose(to_layout(points)[1, 68], points[1, 468])  # right iris centre
    with pytest.raises(ValueError, match="478"):
        to_layout(points[:, :468])


def test_still_image_landmarks_sit_on_the_face():
    from skimage import data

    landmarks = detect_layout_landmarks(data.astronaut())
    right_eye, left_eye = landmarks[36:42].mean(0), landmarks[42:48].mean(0)
    assert np.linalg.norm(right_eye - RIGHT_EYE) < 4 and np.linalg.norm(left_eye - LEFT_EYE) < 4
    assert landmarks[0, 0] < landmarks[8, 0] < landmarks[16, 0]  # jaw: image left -> chin -> right
    assert landmarks[8, 1] > landmarks[57, 1] > landmarks[30, 1] > landmarks[27, 1]  # chin, lip, nose
    assert detect_layout_landmarks(np.full((128, 128, 3), 100, np.uint8)) is None


def test_small_face_in_a_wide_frame_is_found():
    import cv2
    from skimage import data

    photo = data.astronaut()
    wide = np.full((720, 1280, 3), 128, np.uint8)
    wide[300:556, 900:1156] = cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA)  # face ~45 px
    landmarks = detect_layout_landmarks(wide)
    assert landmarks is not None
    expected = detect_layout_landmarks(photo) * 0.5 + [900, 300]
    assert np.abs(landmarks[:68] - expected[:68]).mean() < 1.5
    with FaceMeshDetector() as detector:  # video mode follows the small face as it moves
        for shift in (0, 6, 12):
            points = detector.detect(np.roll(wide, shift, axis=1))
            assert np.abs(to_layout(points)[:68] - expected[:68] - [shift, 0]).mean() < 1.5


def test_clip_format_and_lengths(prepared):
    path, clip = prepared
    frames = clip.frames(128)
    assert clip.num_frames == int(SECONDS * 25) == len(frames) and frames.shape[1:] == (128, 128, 3)
    assert len(clip.self_audio) == len(clip.other_audio) == clip.num_frames * SAMPLE_RATE // 25
    assert not clip.other_audio.any()
    meta = json.loads((path / "meta.json").read_text())
    assert meta["fps"] == 25 and meta["sample_rate"] == SAMPLE_RATE and meta["language"] == "und"
    assert meta["param_names"] == [] and meta["video_size"] == 128 and meta["identity"] == "talk"
    assert meta["source"] == "talk.mp4"
    assert clip.motion["params"].shape == (clip.num_frames, 0)
    assert clip.motion["crop"].shape == (clip.num_frames, 3) and clip.motion["face_found"].all()
    assert not list(path.parent.glob(".*"))  # no partial folders left behind


def test_landmarks_follow_the_face_in_the_crop(prepared):
    _, clip = prepared
    lms = clip.landmarks()  # (T, 86, 2) crop pixels
    assert lms.shape == (clip.num_frames, 86, 2) and lms.min() > 0 and lms.max() < 128
    # expected eye and mouth positions: the photo's points, moved as the video moved them,
    # then into the crop boxes the preparation chose
    scale, centre = motion(np.arange(clip.num_frames) / 25)
    box = clip.motion["crop"]
    side = np.round(box[:, 2:])
    corner = np.round(box[:, :2] - side / 2)
    for group, point in (("right_eye", RIGHT_EYE), ("left_eye", LEFT_EYE), ("outer_lip", MOUTH)):
        source = centre + scale[:, None] * (point - FACE)  # (T, 2) on the canvas
        expected = (source - corner) * 128 / side
        error = np.linalg.norm(lms[:, LANDMARK_GROUPS[group]].mean(1) - expected, axis=1)
        assert error.max() < 0.04 * 128, group
    # the face grew 17 % in the video but keeps its size in the crop, and barely moves
    iod = np.linalg.norm(lms[:, 69] - lms[:, 68], axis=1)
    assert (iod.max() - iod.min()) / iod.mean() < 0.06
    assert lms[:, 30].std(0).max() < 0.02 * 128
    assert np.corrcoef(box[:, 0], centre[:, 0])[0, 1] > 0.95
    assert np.corrcoef(box[:, 1], centre[:, 1])[0, 1] > 0.95
    assert np.corrcoef(box[:, 2], scale)[0, 1] > 0.95
    # landmarks agree with a fresh detection on the written video
    frames = clip.frames(128)
    for t in (0, clip.num_frames // 2, clip.num_frames - 1):
        fresh = detect_layout_landmarks(frames[t])
        assert np.abs(fresh[36:68] - lms[t, 36:68]).mean() < 2.0


def test_states_mark_the_voiced_part_as_self(prepared):
    _, clip = prepared
    state = clip.motion["state"]
    frame = np.arange(clip.num_frames)
    inside = (frame >= VOICED[0] * 25 + 2) & (frame < VOICED[1] * 25 - 2)
    outside = (frame < VOICED[0] * 25 - 2) | (frame >= VOICED[1] * 25 + 2)
    assert (state[inside] == 1).all() and (state[outside] == 0).all()


@pytest.mark.parametrize("kind, message", [
    ("noface", "no face found"), ("silent", "has no audio track"),
    ("corrupt", "not a readable video"), ("short", "shorter than 1 s")])
def test_bad_videos_raise_clear_errors(tmp_path, kind, message):
    path = tmp_path / f"{kind}.mp4"
    if kind == "noface":
        flat_video(path, 1.2)
    elif kind == "silent":
        face_video(path, audio=False)
    elif kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        flat_video(path, 0.6)
    with pytest.raises(PrepareError, match=message) as error:
        prepare_video(path, tmp_path / "clips")
    assert path.name in str(error.value)
    assert not (tmp_path / "clips" / kind).exists()


def test_folder_run_keeps_good_videos_and_the_cli(tmp_path):
    from infp_lab.cli import main

    videos = tmp_path / "videos"
    face_video(videos / "good.mp4", fps=30, blank=(1.0, 1.2))  # resampled to 25 fps, 5 faceless frames
    write_bad = videos / "bad.mp4"
    write_bad.write_bytes(b"not a video at all" * 100)
    from infp_lab.data.audio import save_wav

    save_wav(videos / "good.partner.wav", tone((0.0, 0.5)))
    report = prepare_videos(videos, tmp_path / "out", size=96)
    assert report["clips"] == ["good"] and list(report["failed"]) == ["bad.mp4"]
    clip = load_clip(tmp_path / "out" / "good")
    assert clip.num_frames == int(SECONDS * 25) and clip.base_size == 96
    found = clip.motion["face_found"]
    assert not found[25:30].any() and found[:25].all() and found[30:].all()
    jump = np.abs(np.diff(clip.motion["crop"][20:35], axis=0)).max()
    assert jump < 3  # the crop glides over the gap (source pixels per frame)
    assert clip.motion["state"][2:10].tolist() == [2] * 8  # the partner speaks first
    assert clip.motion["state"][int(VOICED[0] * 25) + 2] == 1

    assert main(["data", "prepare", "--videos", str(videos), "--out", str(tmp_path / "cli"), "--size", "128"]) == 0
    assert load_clip(tmp_path / "cli" / "good").frames(128).shape[1:] == (128, 128, 3)
    with pytest.raises(FileNotFoundError):
        prepare_videos(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no videos"):
        prepare_videos(tmp_path / "empty", tmp_path / "out")
