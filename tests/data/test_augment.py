"""Augmentations keep boxes on their objects: draw a filled rectangle where a box is, transform both,
and compare the transformed box with the bounding box of the transformed drawing."""

from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from yololab.data.augment import (AugmentConfig, Photometric, apply_hsv, augment_hsv, box_candidates, flip_lr, flip_ud,
                                  hsv_grey, hsv_lut, letterbox, mixup, random_affine, scale_translate_into,
                                  transform_boxes, unletterbox_boxes)
from yololab.errors import ConfigError


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def mask_box(img: np.ndarray, thr: int = 200) -> tuple[float, float, float, float]:
    """Bounding box (pixel edges) of the bright drawing."""
    ys, xs = np.nonzero(img[..., 1] > thr)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def drawn(h=120, w=160, box=(30, 20, 90, 70)):
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return img, np.array([0.0], np.float32), np.array([box], np.float32)


@pytest.mark.parametrize("params", [
    dict(degrees=0, translate=0.1, scale=0.5),
    dict(degrees=30, translate=0.1, scale=0.3),
    dict(degrees=10, shear=10, translate=0.05, scale=0.2),
    dict(degrees=5, perspective=0.0005, translate=0.05, scale=0.2),
])
def test_random_affine_keeps_boxes_on_objects(params):
    hyp = replace(AugmentConfig(), **params)
    for seed in range(8):
        img, cls, boxes = drawn()
        out, cls2, boxes2 = random_affine(img, cls, boxes, hyp, np.random.default_rng(seed))
        assert out.shape == img.shape and out.dtype == np.uint8
        if len(boxes2) == 0:  # pushed out of the image: then the drawing must be (nearly) gone too
            assert (out[..., 1] > 200).sum() < 0.1 * 60 * 50 * (1 + hyp.scale) ** 2
            continue
        assert iou(boxes2[0], mask_box(out)) > 0.9, (params, seed)


def test_random_affine_mosaic_border_gives_half_size():
    img, cls, boxes = drawn(200, 200, (80, 80, 120, 120))
    out, _, _ = random_affine(img, cls, boxes, AugmentConfig(), np.random.default_rng(0), border=(-50, -50))
    assert out.shape == (100, 100, 3)


def test_flips_are_exact():
    img, cls, boxes = drawn()
    f, b = flip_lr(img, boxes)
    assert np.array_equal(f, img[:, ::-1]) and tuple(b[0]) == mask_box(f)
    f, b = flip_ud(img, boxes)
    assert np.array_equal(f, img[::-1]) and tuple(b[0]) == mask_box(f)
    f2, b2 = flip_lr(*flip_lr(img, boxes))
    assert np.array_equal(f2, img) and np.array_equal(b2, boxes)


@pytest.mark.parametrize("shape,new", [((120, 160), (256, 256)), ((300, 100), (128, 96)), ((97, 131), (64, 64))])
def test_letterbox_inverse_mapping_is_exact(shape, new):
    img, _, boxes = drawn(*shape, box=(10, 10, shape[1] // 2, shape[0] // 2))
    out, gain, pad = letterbox(img, new)
    assert out.shape[:2] == new
    mapped = boxes.astype(np.float64).copy()
    mapped[:, [0, 2]] = mapped[:, [0, 2]] * gain[0] + pad[0]
    mapped[:, [1, 3]] = mapped[:, [1, 3]] * gain[1] + pad[1]
    np.testing.assert_allclose(unletterbox_boxes(mapped, gain, pad), boxes, atol=1e-9)
    np.testing.assert_allclose(mask_box(out, 127), mapped[0], atol=1.01)  # the drawing moved the same way
    # padding is grey, centred
    assert out[0, 0].tolist() == [114, 114, 114] or pad == (0, 0)


def test_letterbox_no_scaleup():
    img, _, _ = drawn(50, 40)
    out, gain, pad = letterbox(img, (100, 100), scaleup=False)
    assert gain == (1.0, 1.0) and pad == (30, 25) and np.array_equal(out[25:75, 30:70], img)


def test_box_candidates_drop_degenerate_boxes():
    before = np.array([[0, 0, 100, 100]] * 4, np.float32)
    after = np.array([[0, 0, 100, 100],   # kept
                      [0, 0, 1.5, 50],    # narrower than 2 px
                      [0, 0, 20, 20],     # 4 % of its area left
                      [0, 0, 300, 2.5]],  # aspect ratio 120
                     np.float32)
    assert box_candidates(before, after).tolist() == [True, False, False, False]


def test_affine_drops_boxes_moved_out_of_the_image():
    img, cls, boxes = drawn(100, 100, (0, 0, 12, 12))
    hyp = replace(AugmentConfig(), translate=0.0, scale=0.0)
    # translate to a corner: build a big shift with translate=0.5 until the box leaves
    dropped = 0
    for seed in range(40):
        h = replace(hyp, translate=0.5)
        _, c, b = random_affine(img, cls, boxes, h, np.random.default_rng(seed))
        dropped += len(b) == 0
        for bb in b:
            assert bb[2] - bb[0] > 2 and bb[3] - bb[1] > 2
    assert dropped > 0


def test_hsv_deterministic_and_off_when_zero():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    off = replace(AugmentConfig(), hsv_h=0, hsv_s=0, hsv_v=0)
    assert augment_hsv(img, off, rng) is img
    a = augment_hsv(img.copy(), AugmentConfig(), np.random.default_rng(1))
    b = augment_hsv(img.copy(), AugmentConfig(), np.random.default_rng(1))
    assert a.dtype == np.uint8 and a.shape == img.shape and np.array_equal(a, b) and not np.array_equal(a, img)
    # the reference: OpenCV HSV round trip with the same gains, done by hand
    dh, gs, gv = np.random.default_rng(1).uniform(-1, 1, 3) * (0.015, 0.7, 0.4) + (0, 1, 1)
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + dh * 180) % 180
    hsv[..., 1:] = np.clip(hsv[..., 1:] * (gs, gv), 0, 255)
    assert np.array_equal(a, cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR))


def test_photometric_extras_all_on():
    hyp = replace(AugmentConfig(), blur=1, median_blur=1, to_gray=1, clahe=1, brightness_contrast=1, gamma=1, jpeg=1)
    ph = Photometric(hyp)
    assert len(ph.transforms) == 7
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    a, b = ph(img, np.random.default_rng(3)), ph(img, np.random.default_rng(3))
    assert a.shape == img.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    assert np.all(a[..., 0] == a[..., 1])  # ToGray ran
    assert Photometric(replace(hyp, blur=0, median_blur=0, to_gray=0, clahe=0, brightness_contrast=0, gamma=0,
                               jpeg=0)).transforms == []


def test_mixup_blends_and_keeps_both_label_sets():
    a, ca, ba = drawn()
    b = np.full_like(a, 100)
    img, c, bx = mixup(a, ca, ba, b, ca, ba + 1, np.random.default_rng(0))
    assert img.shape == a.shape and len(c) == 2 and len(bx) == 2
    assert 100 < img[40, 50, 0] < 255 and 0 < img[0, 0, 0] < 100


def test_defaults_match_ultralytics():
    import ultralytics

    ref = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "default.yaml").read_text())
    ours = asdict(AugmentConfig())
    for k in ("hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear", "perspective", "flipud",
              "fliplr", "mosaic", "mixup", "close_mosaic"):
        assert ours[k] == ref[k], k


def test_from_dict_rejects_unknown_keys():
    assert AugmentConfig.from_dict({"mosaic": 0.5, "close_mosaic": 3}).close_mosaic == 3
    with pytest.raises(ConfigError, match="mosiac"):
        AugmentConfig.from_dict({"mosiac": 1.0}, where="hyp.yaml")
    with pytest.raises(ConfigError, match="fliplr"):
        AugmentConfig.from_dict({"fliplr": "often"})
    with pytest.raises(ConfigError, match="mosaic"):
        AugmentConfig(mosaic=1.5)
    with pytest.raises(ConfigError, match="scale"):
        AugmentConfig.from_dict({"scale": 1.0})


@pytest.mark.parametrize("s,tx,ty", [(0.5, -320.0, -300.0), (1.37, -100.3, 20.7), (1.0, 0.0, 0.0), (0.8, 50.5, -10.2)])
def test_scale_translate_fast_path_matches_warp_affine(s, tx, ty):
    """The crop + resize path (no rotation/shear) gives the picture of the general warp, and returns the
    matrix it really applied (within a pixel of the requested one)."""
    yy, xx = np.mgrid[0:400, 0:500]
    img = np.stack([(xx * 0.5) % 256, (yy * 0.6) % 256, (xx + yy) * 0.25 % 256], -1).astype(np.uint8)
    M = np.array([[s, 0, tx], [0, s, ty], [0, 0, 1.0]])
    fast = np.full((240, 320, 3), 114, np.uint8)
    done = scale_translate_into(fast, img, M)
    ref = cv2.warpAffine(img, done[:2], (320, 240), borderValue=(114, 114, 114))
    assert np.abs(done - M).max() < 1.5
    inner = (slice(4, -4), slice(4, -4))
    assert np.abs(fast[inner].astype(int) - ref[inner]).mean() < 3
    # a drawn rectangle lands where the returned matrix puts its box
    rect = np.zeros_like(img)
    rect[150:260, 330:430] = 255
    moved = np.zeros((240, 320, 3), np.uint8)
    scale_translate_into(moved, rect, M)
    box = transform_boxes(np.array([[330, 150, 430, 260]], np.float32), done, 320, 240)[0]
    if (moved[..., 1] > 127).any():
        np.testing.assert_allclose(mask_box(moved, 127), box, atol=1.0)
    if (s, tx, ty) == (1.0, 0.0, 0.0):
        assert np.array_equal(fast, img[:240, :320])


def test_flip_in_place_is_the_same_flip():
    img, cls, boxes = drawn()
    for flip in (flip_lr, flip_ud):
        ref_img, ref_boxes = flip(img, boxes)
        mine = img.copy()
        out, out_boxes = flip(mine, boxes, inplace=True)
        assert out is mine and np.array_equal(out, ref_img) and np.array_equal(out_boxes, ref_boxes)


def test_hsv_lut_keeps_grey_grey():
    """hsv_grey (the fill of a mosaic's gaps when HSV runs tile by tile) is exactly what apply_hsv makes
    of every grey level, for any gains."""
    grey = np.repeat(np.arange(256, dtype=np.uint8), 3).reshape(1, 256, 3)
    hyp = replace(AugmentConfig(), hsv_h=0.5, hsv_s=0.9, hsv_v=0.9)
    for seed in range(20):
        lut = hsv_lut(hyp, np.random.default_rng(seed))
        out = apply_hsv(grey.copy(), lut)
        assert all(out[0, v].tolist() == [hsv_grey(lut, v)] * 3 for v in range(256)), seed
    assert hsv_lut(replace(hyp, hsv_h=0, hsv_s=0, hsv_v=0), np.random.default_rng(0)) is None
    assert hsv_grey(None) == 114


@pytest.mark.parametrize("s,tx,ty", [(0.6, -200.0, -150.3), (1.4, -80.2, 30.9), (1.0, 0.0, 0.0), (0.9, 40.5, -10.0),
                                     (1.3, -700.0, -500.0)])
def test_scale_translate_with_hsv(s, tx, ty):
    """HSV inside scale_translate_into: HSV of the finished image where the image shrinks (HSV after the
    resize, up to OpenCV's rounding), within a level or two where it grows (HSV before the resize); the
    same mapping either way."""
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), (500, 400), interpolation=cv2.INTER_CUBIC)
    lut = hsv_lut(AugmentConfig(), np.random.default_rng(7))
    M = np.array([[s, 0, tx], [0, s, ty], [0, 0, 1.0]])
    ref = np.full((240, 320, 3), 114, np.uint8)
    done_ref = scale_translate_into(ref, img, M)
    ref = apply_hsv(ref, lut)
    out = np.full((240, 320, 3), hsv_grey(lut), np.uint8)
    src = img.copy()
    done = scale_translate_into(out, src, M, lut)
    assert np.array_equal(src, img)  # the source (a cached image in the dataset) is never modified
    assert np.array_equal(done, done_ref)
    diff = np.abs(out.astype(int) - ref)
    if s <= 1:
        # the same conversions of the same pixels; OpenCV's HSV -> BGR rounds the last (width mod 32)
        # pixels of a row (its scalar tail) by one level differently, and a tile is a narrower row
        assert diff.max() <= 1 and (diff > 0).mean() < 0.05
    else:
        assert diff.mean() < 1.0 and np.quantile(diff, 0.99) <= 6, (diff.mean(), diff.max())


def test_photometric_draw_then_apply():
    """The coin flips are drawn with the sample's generator (Albumentations only runs for what fired):
    each transform fires with its own probability, and draw + apply is __call__."""
    hyp = replace(AugmentConfig(), blur=0.3, median_blur=0.0, to_gray=0.6, clahe=0.0)
    ph = Photometric(hyp)
    rng = np.random.default_rng(0)
    draws = [ph.draw(rng) for _ in range(4000)]
    blur, gray = ph.transforms[0][1], ph.transforms[1][1]
    assert abs(np.mean([any(t is blur for t, _ in d) for d in draws]) - 0.3) < 0.03
    assert abs(np.mean([any(t is gray for t, _ in d) for d in draws]) - 0.6) < 0.03
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    fired = ph.draw(np.random.default_rng(5))
    assert np.array_equal(ph.apply(img, fired), ph(img, np.random.default_rng(5)))
    assert ph.apply(img, []) is img
