"""MediaPipe Face Mesh landmarks for real faces, mapped to the project's 86-point layout
(design.md section 3.2: real-video preparation; section 7: the warp renderer's landmarks).

`FaceMeshDetector` runs MediaPipe Face Mesh (mediapipe 0.10.21, whose model ships inside
the wheel, so it works offline) with iris refinement: 478 points per face in pixels.
`MEDIAPIPE_TO_LAYOUT` is the one mapping from those 478 points to the 86-point layout of
`infp_lab.render.face_model` ("right" = the subject's right = image left):

====== ================================================================================
layout MediaPipe source (a tuple is averaged; a repeated index weighs more)
====== ================================================================================
0-16   face oval from the right side at eye level (127/234) through the chin (152) to
       the left side (454/356), picked for even arc length like the SynConv jaw
17-26  brows: centre line of the brow's upper and lower edge (e.g. 70/46 .. 107/55)
27-30  nose bridge 6 (between the eyes), 197/195, 5, tip 4
31-35  nose base: right wing 98, 97, under the tip 2, 326, left wing 327
36-47  eye corners 33, 133, 362, 263; lid points at 1/3 and 2/3 of the eye width
       (160/159, 158 | 144/145, 153 and their mirror images), upper/lower in columns
48-59  outer lip: corners 61, 291; cupid's bow 37, 0, 267; lower centre 17
60-67  inner lip: corners 78, 308; centres 13, 14; columns 81/82 | 178/87 and mirror
68, 69 iris centres 468, 473
70-77  eyelid extras at 1/6 and 5/6 of the eye width (161/160, 157 | 163/144, 154 ...)
78-83  teeth edges: 1/5 (upper) and 4/5 (lower) of the way between the inner lips
84, 85 tongue top and tip: 2/3 and 4/5 of the way from inner-lip centre 13 to 14
====== ================================================================================

Real faces have no visible teeth or tongue landmarks; points 78-85 are placed inside the
mouth opening as the SynConv face model places them, so they coincide with the lips when
the mouth is closed.
"""

from __future__ import annotations

import numpy as np

NUM_MEDIAPIPE_POINTS = 478  # 468 mesh points + 2 x 5 iris points (refine_landmarks=True)


def _mix(upper: tuple[int, ...], lower: tuple[int, ...], w_upper: int, w_lower: int) -> tuple[int, ...]:
    """Indices whose plain average is the w_upper : w_lower blend of two point groups."""
    return tuple(upper) * w_upper + tuple(lower) * w_lower


_JAW = (
    (127, 234), 93, (132, 58), (58, 172), 136, 150, (149, 176), 148, 152,    # right side -> chin
    377, (400, 378), 379, 365, (397, 288), (288, 361), 323, (454, 356),      # chin -> left side
)
_BROWS = (
    (70, 46), (63, 53), (105, 52), (66, 65), (107, 55),                      # right, outer -> inner
    (336, 285), (296, 295), (334, 282), (293, 283), (300, 276),              # left, inner -> outer
)
_NOSE = (6, (197, 195), 5, 4, 98, 97, 2, 326, 327)
_EYES = (
    33, (160, 159), 158, 133, 153, (144, 145),                               # right eye 36-41
    362, 385, (387, 386), 263, (373, 374), 380,                              # left eye 42-47
)
_LIPS = (
    61, 39, 37, 0, 267, 269, 291, (321, 405), 314, 17, 84, (181, 91),        # outer lip 48-59
    78, (81, 82), 13, (311, 312), 308, (402, 317), 14, (178, 87),            # inner lip 60-67
)
_IRIS = (468, 473)
_LID_EXTRAS = (
    (161, 160), 157, 154, (163, 144),                                        # right 70-73
    384, (388, 387), (390, 373), 381,                                        # left 74-77
)
_MOUTH_INTERIOR = (
    _mix((81, 82), (178, 87), 4, 1), _mix((13,), (14,), 4, 1), _mix((311, 312), (402, 317), 4, 1),
    _mix((81, 82), (178, 87), 1, 4), _mix((13,), (14,), 1, 4), _mix((311, 312), (402, 317), 1, 4),
    _mix((13,), (14,), 1, 2), _mix((13,), (14,), 1, 4),                     # tongue top, tip
)
MEDIAPIPE_TO_LAYOUT: tuple = _JAW + _BROWS + _NOSE + _EYES + _LIPS + _IRIS + _LID_EXTRAS + _MOUTH_INTERIOR
NUM_LAYOUT_POINTS = len(MEDIAPIPE_TO_LAYOUT)  # 86


def _layout_weights() -> np.ndarray:
    """The mapping as a (86, 478) averaging matrix."""
    weights = np.zeros((NUM_LAYOUT_POINTS, NUM_MEDIAPIPE_POINTS))
    for row, source in enumerate(MEDIAPIPE_TO_LAYOUT):
        for index in np.atleast_1d(source):
            weights[row, index] += 1.0 / np.size(source)
    return weights


_WEIGHTS = _layout_weights()  # (86, 478)


def to_layout(mediapipe_points: np.ndarray) -> np.ndarray:
    """Map MediaPipe points (..., 478, 2) to the project's layout (..., 86, 2), float32."""
    points = np.asarray(mediapipe_points, dtype=np.float64)
    if points.ndim < 2 or points.shape[-2:] != (NUM_MEDIAPIPE_POINTS, 2):
        raise ValueError(f"expected MediaPipe points of shape (..., {NUM_MEDIAPIPE_POINTS}, 2) "
                         f"(Face Mesh with refine_landmarks=True), got {points.shape}")
    return np.einsum("lm,...mc->...lc", _WEIGHTS, points).astype(np.float32)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"images must be (H, W, 3) RGB, got shape {image.shape}")
    return np.ascontiguousarray(image)


class FaceMeshDetector:
    """MediaPipe Face Mesh with iris refinement: 478 landmarks in pixels for one face per frame."""

    def __init__(self, static_image_mode: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5):
        """
        Args:
            static_image_mode: False (default) tracks the face across video frames; True
                detects afresh on every image (unrelated stills).
            min_detection_confidence, min_tracking_confidence: MediaPipe's thresholds.

        Face Mesh's own detector only sees faces that fill a good part of the frame. When it
        finds none, the mesh runs again on a square crop around the face of the previous
        frame (video mode), then around candidates from MediaPipe's full-range face detector
        and OpenCV's Haar cascade, so small faces in wide shots are found too.
        """
        try:
            import mediapipe as mp
        except ImportError as error:
            raise ImportError("face landmarks need mediapipe 0.10.21: pip install 'infp-lab[real]'") from error
        self._solutions = mp.solutions
        self._static = static_image_mode
        self._confidence = min_detection_confidence
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static_image_mode, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence)
        self._crop_mesh = self._finder = self._cascade = None  # made on first need
        self._previous: np.ndarray | None = None  # (478, 2) of the last frame with a face

    def detect(self, frame_rgb: np.ndarray) -> np.ndarray | None:
        """Landmarks (478, 2) float32 in pixel coordinates (x, y) of the frame, or None if no face."""
        if self._mesh is None:
            raise RuntimeError("FaceMeshDetector is closed")
        frame = _as_rgb(frame_rgb)
        points = self._run(self._mesh, frame)
        if points is None and self._previous is not None:
            low, high = self._previous.min(0), self._previous.max(0)
            points = self._mesh_in_box(frame, (low + high) / 2, 1.8 * float((high - low).max()))
        if points is None:
            for centre, side in self._candidates(frame):
                points = self._mesh_in_box(frame, centre, side)
                if points is not None:
                    break
        self._previous = None if self._static else points
        return points

    @staticmethod
    def _run(mesh, frame: np.ndarray) -> np.ndarray | None:
        result = mesh.process(frame)
        if not result.multi_face_landmarks:
            return None
        height, width = frame.shape[:2]
        points = np.array([(p.x, p.y) for p in result.multi_face_landmarks[0].landmark], np.float32)
        if len(points) != NUM_MEDIAPIPE_POINTS:
            return None
        return points * np.array([width, height], np.float32)  # (478, 2)

    def _mesh_in_box(self, frame: np.ndarray, centre: np.ndarray, side: float) -> np.ndarray | None:
        """Run the mesh on a square crop (zero padded at the borders) and map back to the frame."""
        side = max(int(round(side)), 16)
        x0, y0 = (int(round(c - side / 2)) for c in centre)
        height, width = frame.shape[:2]
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
        if xb - xa < 8 or yb - ya < 8:
            return None
        patch = np.zeros((side, side, 3), np.uint8)
        patch[ya - y0:yb - y0, xa - x0:xb - x0] = frame[ya:yb, xa:xb]
        if self._crop_mesh is None:
            self._crop_mesh = self._solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=self._confidence)
        points = self._run(self._crop_mesh, patch)
        return None if points is None else points + np.array([x0, y0], np.float32)

    def _candidates(self, frame: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Face boxes as (centre (2,), crop side): full-range detector first, then Haar."""
        import cv2

        if self._finder is None:
            self._finder = self._solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=self._confidence)
            self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        height, width = frame.shape[:2]
        boxes = []  # (x, y, w, h) in pixels
        for found in self._finder.process(frame).detections or []:
            box = found.location_data.relative_bounding_box
            boxes.append((box.xmin * width, box.ymin * height, box.width * width, box.height * height))
        if not self._cascade.empty():
            shrink = min(1.0, 960 / max(height, width))
            grey = cv2.cvtColor(cv2.resize(frame, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
                                if shrink < 1 else frame, cv2.COLOR_RGB2GRAY)
            found = self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))
            haar = sorted((tuple(b / shrink) for b in np.asarray(found, float).reshape(-1, 4)),
                          key=lambda b: -b[2] * b[3])
            boxes += haar[:3]
        return [(np.array([x + w / 2, y + h / 2]), 2.2 * max(w, h)) for x, y, w, h in boxes]

    def close(self) -> None:
        for model in (self._mesh, self._crop_mesh, self._finder):
            if model is not None:
                model.close()
        self._mesh = self._crop_mesh = self._finder = None

    def __enter__(self) -> FaceMeshDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detect_layout_landmarks(image_rgb: np.ndarray) -> np.ndarray | None:
    """The 86 layout landmarks (86, 2) of the face in one still image, or None if no face.

    Accepts (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey uint8 images.
    """
    with FaceMeshDetector(static_image_mode=True) as detector:
        points = detector.detect(image_rgb)
    return None if points is None else to_layout(points)
