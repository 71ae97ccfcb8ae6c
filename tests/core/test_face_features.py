"""Face front end: crop geometry, resize/normalisation formula, validation, detector loading."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_mmer.config import FaceConfig
from edge_mmer.features.face import (
    FaceBox,
    HaarFaceDetector,
    crop_face,
    largest_face,
    preprocess_face,
    preprocess_faces,
)


def _coord_frame(height: int = 120, width: int = 160) -> np.ndarray:
    """Frame whose pixel (y, x) encodes its coordinates: B = x, G = y, R = 7 (uint8, so x, y < 256)."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs, ys, np.full_like(xs, 7)], axis=2).astype(np.uint8)


# --- FaceBox / largest_face ---------------------------------------------------------------------

def test_facebox_area_and_largest() -> None:
    boxes = [FaceBox(0, 0, 10, 10), FaceBox(5, 5, 20, 10), FaceBox(1, 1, 10, 20)]
    assert boxes[1].area == 200
    assert largest_face(boxes) is boxes[1]  # first of the two 200-px boxes
    assert largest_face([]) is None


# --- crop_face ----------------------------------------------------------------------------------

def test_crop_inside_frame_is_exact_slice() -> None:
    frame = _coord_frame()
    box = FaceBox(x=50, y=40, w=30, h=30)
    crop = crop_face(frame, box, margin=0.2)  # side = 30 * 1.4 = 42, top-left = (44, 34)
    assert crop.shape == (42, 42, 3)
    np.testing.assert_array_equal(crop, frame[34:76, 44:86])
    crop[:] = 0
    assert frame[34, 44, 0] == 44  # a copy, not a view


def test_crop_no_margin_non_square_box_uses_longer_side() -> None:
    frame = _coord_frame()
    box = FaceBox(x=60, y=30, w=20, h=40)
    crop = crop_face(frame, box, margin=0.0)
    assert crop.shape == (40, 40, 3)
    # centred horizontally: x0 = (2*60 + 20 - 40) // 2 = 50
    np.testing.assert_array_equal(crop, frame[30:70, 50:90])


def test_crop_out_of_frame_is_square_and_edge_replicated() -> None:
    frame = _coord_frame(100, 100)
    box = FaceBox(x=0, y=70, w=40, h=40)  # bottom goes out of frame, margin pushes left/top too
    crop = crop_face(frame, box, margin=0.25)  # side 60, top-left (-10, 60), bottom-right (50, 120)
    assert crop.shape == (60, 60, 3)
    # Pixel (row r, col c) of the crop comes from frame (clip(60 + r), clip(-10 + c)).
    rows = np.clip(np.arange(60) + 60, 0, 99)
    cols = np.clip(np.arange(60) - 10, 0, 99)
    np.testing.assert_array_equal(crop, frame[rows][:, cols])
    assert np.all(crop[:, :10, 0] == 0)  # left padding replicates column 0 (B = x = 0)
    assert np.all(crop[40:, :, 1] == 99)  # bottom padding replicates the last row (G = y = 99)


def test_crop_gray_frame() -> None:
    frame = _coord_frame()[:, :, 0]
    crop = crop_face(frame, FaceBox(150, 110, 20, 20), margin=0.0)
    assert crop.shape == (20, 20)
    assert crop.max() == 159


def test_crop_errors() -> None:
    frame = _coord_frame()
    with pytest.raises(ValueError, match="zero size"):
        crop_face(frame, FaceBox(10, 10, 0, 10), margin=0.1)
    with pytest.raises(ValueError, match="outside"):
        crop_face(frame, FaceBox(500, 500, 20, 20), margin=0.1)
    with pytest.raises(ValueError, match="empty"):
        crop_face(np.zeros((0, 10, 3), np.uint8), FaceBox(0, 0, 5, 5), margin=0.1)
    with pytest.raises(ValueError, match="shape"):
        crop_face(np.zeros(10, np.uint8), FaceBox(0, 0, 5, 5), margin=0.1)


# --- preprocess_face ----------------------------------------------------------------------------

def _expected(crop_bgr: np.ndarray, cfg: FaceConfig) -> np.ndarray:
    rgb = crop_bgr[:, :, ::-1].astype(np.float32) / np.float32(255.0)
    out: np.ndarray = ((rgb - np.asarray(cfg.mean, np.float32)) / np.asarray(cfg.std, np.float32)).transpose(2, 0, 1)
    return out


def test_preprocess_normalisation_formula_at_exact_size() -> None:
    rng = np.random.default_rng(0)
    cfg = FaceConfig(crop_size=80, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    crop = rng.integers(0, 256, size=(80, 80, 3), dtype=np.uint8)
    out = preprocess_face(crop, cfg)
    assert out.shape == (3, 80, 80) and out.dtype == np.float32
    np.testing.assert_allclose(out, _expected(crop, cfg), rtol=0, atol=1e-6)
    # channel 0 is red = BGR channel 2; one explicit pixel
    assert out[0, 3, 4] == pytest.approx((crop[3, 4, 2] / 255.0 - 0.485) / 0.229, abs=1e-5)


def test_preprocess_default_mean_std_range() -> None:
    cfg = FaceConfig()
    black = preprocess_face(np.zeros((96, 96, 3), np.uint8), cfg)
    white = preprocess_face(np.full((96, 96, 3), 255, np.uint8), cfg)
    np.testing.assert_allclose(black, -1.0)
    np.testing.assert_allclose(white, 1.0)


@pytest.mark.parametrize(("size_in", "interp"), [(200, cv2.INTER_AREA), (50, cv2.INTER_LINEAR)])
def test_preprocess_resize_interpolation(size_in: int, interp: int) -> None:
    rng = np.random.default_rng(1)
    cfg = FaceConfig(crop_size=96)
    crop = rng.integers(0, 256, size=(size_in, size_in, 3), dtype=np.uint8)
    resized = cv2.resize(crop, (96, 96), interpolation=interp)
    np.testing.assert_allclose(preprocess_face(crop, cfg), _expected(resized, cfg), atol=1e-6)


def test_preprocess_grayscale_replicated() -> None:
    rng = np.random.default_rng(2)
    cfg = FaceConfig(crop_size=96, grayscale=True, mean=(0.1, 0.2, 0.3), std=(0.5, 0.6, 0.7))
    crop = rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    out = preprocess_face(crop, cfg)
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    for c in range(3):
        np.testing.assert_allclose(out[c], (gray - cfg.mean[c]) / cfg.std[c], atol=1e-6)


def test_preprocess_gray_input_and_non_square() -> None:
    cfg = FaceConfig(crop_size=96)
    gray = np.full((120, 100), 51, np.uint8)
    out = preprocess_face(gray, cfg)
    assert out.shape == (3, 96, 96)
    np.testing.assert_allclose(out, (0.2 - 0.5) / 0.5, atol=1e-6)


@pytest.mark.parametrize(
    ("crop", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), "zero size"),
        (np.zeros((10, 0, 3), np.uint8), "zero size"),
        (np.zeros((0, 0), np.uint8), "zero size"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 4), np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
        (np.zeros(10, np.uint8), "shape"),
    ],
)
def test_preprocess_rejects_bad_crops(crop: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess_face(crop, FaceConfig())


def test_preprocess_faces_batch() -> None:
    rng = np.random.default_rng(3)
    cfg = FaceConfig(crop_size=96)
    crops = [rng.integers(0, 256, size=(s, s, 3), dtype=np.uint8) for s in (96, 150, 60)]
    batch = preprocess_faces(crops, cfg)
    assert batch.shape == (3, 3, 96, 96) and batch.dtype == np.float32
    for i, crop in enumerate(crops):
        np.testing.assert_array_equal(batch[i], preprocess_face(crop, cfg))
    assert preprocess_faces([], cfg).shape == (0, 3, 96, 96)
    with pytest.raises(ValueError, match="face crop 1"):
        preprocess_faces([crops[0], np.zeros((0, 5, 3), np.uint8)], cfg)


def test_crop_then_preprocess_on_drawn_image() -> None:
    frame = np.full((240, 320, 3), 40, np.uint8)
    cv2.ellipse(frame, (160, 120), (50, 65), 0, 0, 360, (120, 160, 210), -1)
    box = FaceBox(110, 55, 100, 130)
    crop = crop_face(frame, box, margin=FaceConfig().margin)
    assert crop.shape == (169, 169, 3)  # round(130 * 1.3)
    out = preprocess_face(crop, FaceConfig())
    assert out.shape == (3, 96, 96)
    # centre pixel is skin colour (B=120, G=160, R=210) -> RGB channels
    centre = out[:, 48, 48]
    np.testing.assert_allclose(centre, (np.array([210, 160, 120]) / 255.0 - 0.5) / 0.5, atol=1e-6)


# --- detector -----------------------------------------------------------------------------------

def test_detector_loads_and_finds_nothing_on_blank_frames() -> None:
    det = HaarFaceDetector()
    assert det.detect(np.zeros((240, 320, 3), np.uint8)) == []
    assert det.detect(np.full((1080, 1920, 3), 128, np.uint8)) == []  # downscaled path
    assert det.detect(np.zeros((240, 320), np.uint8)) == []


def test_detector_missing_cascade_file() -> None:
    with pytest.raises(FileNotFoundError, match="Haar cascade file not found"):
        HaarFaceDetector(cascade_path="/nonexistent/haarcascade.xml")


def test_detector_rejects_bad_frames() -> None:
    det = HaarFaceDetector()
    with pytest.raises(ValueError, match="uint8"):
        det.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        det.detect(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        det.detect(np.zeros((0, 10, 3), np.uint8))


def test_detector_boxes_mapped_back_from_downscaled_copy() -> None:
    """A large frame is detected on a downscaled copy; boxes must come back in full-frame pixels."""
    synth = pytest.importorskip("edge_mmer.synth.face")
    rng = np.random.default_rng(0)
    frame = synth.render_face(synth.random_identity(rng), synth.neutral_expression(), rng=rng)
    det = HaarFaceDetector(max_side=640)
    small = largest_face(det.detect(frame))
    if small is None:
        pytest.skip("synthetic face not detected at native size")
    height, width = frame.shape[:2]
    big = cv2.resize(frame, (width * 4, height * 4), interpolation=cv2.INTER_LINEAR)
    found = largest_face(det.detect(big))
    assert found is not None
    assert found.x + found.w <= big.shape[1] and found.y + found.h <= big.shape[0]
    assert abs(found.w - 4 * small.w) <= 0.15 * 4 * small.w
    assert abs((found.x + found.w / 2) - 4 * (small.x + small.w / 2)) <= 0.08 * 4 * small.w
    assert abs((found.y + found.h / 2) - 4 * (small.y + small.h / 2)) <= 0.08 * 4 * small.h
