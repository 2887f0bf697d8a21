"""The training/validation dataset and loader: boxes follow the pixels through mosaic + affine + flips,
seeding (per seed, per epoch, across workers), close_mosaic, rect batches, bad samples, RAM cache."""

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from yololab.data.augment import AugmentConfig, letterbox, unletterbox_boxes
from yololab.data.dataset import DetectionDataset, build_dataloader, collate_fn
from yololab.ops.boxes import xywhn_to_xyxy
from yololab.errors import ConfigError

PLAIN = replace(AugmentConfig(), hsv_h=0, hsv_s=0, hsv_v=0, blur=0, median_blur=0, to_gray=0, clahe=0)


def make_rects(root: Path, n: int = 8) -> Path:
    """Black PNG images (varied sizes) with one white rectangle each, and its exact label."""
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("val", 4)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(count):
            h, w = int(rng.integers(60, 130)), int(rng.integers(60, 130))
            bw, bh = int(rng.integers(10, w // 2)), int(rng.integers(10, h // 2))
            x1, y1 = int(rng.integers(5, w - bw - 5)), int(rng.integers(5, h - bh - 5))
            img = np.zeros((h, w, 3), np.uint8)
            img[y1:y1 + bh, x1:x1 + bw] = 255
            cv2.imwrite(str(root / "images" / split / f"{i}.png"), img)
            (root / "labels" / split / f"{i}.txt").write_text(
                f"{i % 3} {(x1 + bw / 2) / w} {(y1 + bh / 2) / h} {bw / w} {bh / h}\n")
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [a, b, c]\n")
    return root / "data.yaml"


@pytest.fixture
def rects(tmp_path) -> Path:
    return make_rects(tmp_path / "rects")


def ds_kwargs(tmp_path, **kw):
    return {"imgsz": 64, "cache_dir": tmp_path / "cache", "verbose": False, **kw}


def same(a: dict, b: dict) -> bool:
    return torch.equal(a["img"], b["img"]) and torch.equal(a["bboxes"], b["bboxes"]) and torch.equal(a["cls"], b["cls"])


@pytest.mark.parametrize("rotate", [True, False])  # general warp, and the scale + translate fast path
def test_boxes_follow_objects_through_mosaic_affine_flips(rects, tmp_path, rotate):
    """Pixels and boxes go through the same mosaic, rotation, shear, scale, translation and flips."""
    hyp = replace(PLAIN, degrees=15 * rotate, shear=5 * rotate, scale=0.4, flipud=0.5, fliplr=0.5, mosaic=0.7)
    ds = DetectionDataset(rects, "train", hyp=hyp, buffer_size=0, **ds_kwargs(tmp_path, imgsz=128))
    checked = 0
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s = ds[i]
            assert s["img"].shape == (3, 128, 128) and s["img"].dtype == torch.uint8
            white = s["img"][1].numpy() > 200
            for (x1, y1, x2, y2) in xywhn_to_xyxy(s["bboxes"].numpy(), 128, 128):
                a, b = int(max(x1 - 3, 0)), int(max(y1 - 3, 0))
                ys, xs = np.nonzero(white[b:int(y2) + 3, a:int(x2) + 3])
                assert len(xs), "a box without its object"
                if min(x1, y1) < 0.5 or max(x2, y2) > 127.5:
                    # clipped by the border after a rotation: the box encloses the whole rotated object, so it
                    # may be larger than its visible part (the same for every box-only pipeline)
                    continue
                m = (xs.min() + a, ys.min() + b, xs.max() + a + 1, ys.max() + b + 1)
                ix = max(0, min(x2, m[2]) - max(x1, m[0])) * max(0, min(y2, m[3]) - max(y1, m[1]))
                union = (x2 - x1) * (y2 - y1) + (m[2] - m[0]) * (m[3] - m[1]) - ix
                assert ix / union > 0.8, (epoch, i)
                checked += 1
    assert checked >= 25


def test_mosaic_shape_and_collate(rects, tmp_path):
    ds = DetectionDataset(rects, "train", **ds_kwargs(tmp_path))
    samples = [ds[i] for i in range(4)]
    batch = collate_fn(samples)
    assert batch["img"].shape == (4, 3, 64, 64) and batch["img"].dtype == torch.uint8
    n = len(batch["cls"])
    assert batch["cls"].shape == (n, 1) and batch["bboxes"].shape == (n, 4) and batch["batch_idx"].shape == (n,)
    counts = [len(x["cls"]) for x in samples]
    assert torch.bincount(batch["batch_idx"].long(), minlength=4).tolist() == counts
    assert (batch["bboxes"] >= 0).all() and (batch["bboxes"] <= 1).all()
    assert len(batch["im_file"]) == len(batch["ori_shape"]) == len(batch["ratio_pad"]) == 4


def test_same_seed_same_samples_other_seed_or_epoch_differs(rects, tmp_path):
    a = DetectionDataset(rects, "train", seed=1, **ds_kwargs(tmp_path))
    b = DetectionDataset(rects, "train", seed=1, **ds_kwargs(tmp_path))
    c = DetectionDataset(rects, "train", seed=2, **ds_kwargs(tmp_path))
    assert all(same(a[i], b[i]) for i in range(len(a)))
    assert not all(same(a[i], c[i]) for i in range(len(a)))

    d = DetectionDataset(rects, "train", seed=1, buffer_size=0, **ds_kwargs(tmp_path))
    e0 = [d[i] for i in range(len(d))]
    d.set_epoch(1)
    e1 = [d[i] for i in range(len(d))]
    assert sum(same(x, y) for x, y in zip(e0, e1)) <= 1
    d.set_epoch(0)
    assert all(same(x, d[i]) for i, x in enumerate(e0))


def _epoch(loader, ds, epoch):
    ds.set_epoch(epoch)
    return list(loader)


def _same_batches(x, y) -> bool:
    return all(p["im_file"] == q["im_file"] and torch.equal(p["img"], q["img"]) and torch.equal(p["bboxes"], q["bboxes"])
               for p, q in zip(x, y)) and len(x) == len(y)


def test_worker_seeding(rects, tmp_path):
    """Two workers give the same batches as none (buffer off), repeat per run, differ per epoch."""
    ds = DetectionDataset(rects, "train", buffer_size=0, **ds_kwargs(tmp_path))
    serial = _epoch(build_dataloader(ds, batch_size=4, workers=0, seed=3), ds, 0)
    loader = build_dataloader(ds, batch_size=4, workers=2, seed=3)
    parallel = _epoch(loader, ds, 0)
    assert _same_batches(serial, parallel)
    second = _epoch(loader, ds, 1)
    assert not _same_batches(parallel, second)
    assert [b["im_file"] for b in parallel] != [b["im_file"] for b in second]  # new shuffle order too

    # with the default per-worker image buffer: still identical from run to run
    ds2 = DetectionDataset(rects, "train", **ds_kwargs(tmp_path))
    runs = [_epoch(build_dataloader(ds2, batch_size=4, workers=2, seed=5), ds2, 0) for _ in range(2)]
    assert _same_batches(*runs)
    # the global NumPy state of the two workers differs (seed_worker), so no duplicated random streams
    info = build_dataloader(_NumpyDraw(), batch_size=1, workers=2, shuffle=False, seed=0)
    draws = [b["cls"].item() for b in info]
    assert draws[0] != draws[1]


class _NumpyDraw(torch.utils.data.Dataset):
    seed = 0

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return {"img": torch.zeros(1), "cls": torch.tensor([[float(np.random.random())]]), "bboxes": torch.zeros(1, 4),
                "im_file": "", "ori_shape": (1, 1), "ratio_pad": None}


def test_close_mosaic(rects, tmp_path):
    hyp = replace(PLAIN, scale=0.0, translate=0.0, fliplr=0.0, close_mosaic=2)
    ds = DetectionDataset(rects, "train", hyp=hyp, buffer_size=0, **ds_kwargs(tmp_path))
    val = DetectionDataset(rects, "train", augment=False, **ds_kwargs(tmp_path))
    ds.set_epoch(5, epochs=10)
    assert not ds.mosaic_closed
    assert not all(torch.equal(ds[i]["img"], val[i]["img"]) for i in range(len(ds)))
    ds.set_epoch(8, epochs=10)
    assert ds.mosaic_closed
    for i in range(len(ds)):  # no mosaic and an identity warp: exactly the letterboxed image
        expected = letterbox(ds.load_image(i)[0], (64, 64), scaleup=False)[0]
        assert np.array_equal(ds[i]["img"].numpy(), expected.transpose(2, 0, 1)[::-1])
        torch.testing.assert_close(ds[i]["bboxes"], val[i]["bboxes"])


def test_rect_batches_on_coco8(coco8, tmp_path):
    ds = DetectionDataset(coco8, "val", imgsz=320, augment=False, rect=True, batch_size=2, cache_dir=tmp_path / "c",
                          verbose=False)
    assert (ds.batch_shapes % 32 == 0).all() and (ds.batch_shapes <= 320 + 32).all()
    assert {tuple(s) for s in ds.batch_shapes} == {(288, 352), (352, 288)}  # landscape and portrait batches
    with pytest.raises(ConfigError, match="shuffle"):
        build_dataloader(ds, batch_size=2, shuffle=True)
    for k, batch in enumerate(build_dataloader(ds, batch_size=2, shuffle=False)):
        assert tuple(batch["img"].shape[2:]) == tuple(ds.batch_shapes[k])
    # ratio_pad maps the boxes back to the original image's pixels
    s = ds[0]
    h, w = s["img"].shape[1:]
    boxes = unletterbox_boxes(xywhn_to_xyxy(s["bboxes"].numpy(), w, h), *s["ratio_pad"])
    h0, w0 = s["ori_shape"]
    np.testing.assert_allclose(boxes, xywhn_to_xyxy(ds.labels[0][:, 1:], w0, h0), atol=1e-3)


def test_bad_samples_skipped_with_warning_and_files_untouched(rects, tmp_path, capsys, data_helpers):
    root = rects.parent
    (root / "images/train/0.png").write_bytes(b"not an image")
    (root / "labels/train/1.txt").write_text("7 0.5 0.5 0.2 0.2\n")  # class 7 of 3
    before = data_helpers.hash_tree(root)
    ds = DetectionDataset(rects, "train", **ds_kwargs(tmp_path))
    assert len(ds) == 6
    err = capsys.readouterr().err
    assert err.count("warning: skipping") == 2 and "0.png" in err and "1.txt" in err
    ds[0]
    assert data_helpers.hash_tree(root) == before


def test_ram_cache_gives_same_samples(rects, tmp_path):
    a = DetectionDataset(rects, "val", augment=False, **ds_kwargs(tmp_path))
    b = DetectionDataset(rects, "val", augment=False, cache="ram", **ds_kwargs(tmp_path))
    assert b.ims is not None and all(same(a[i], b[i]) for i in range(len(a)))
    with pytest.raises(ConfigError):
        DetectionDataset(rects, "val", cache="disk", **ds_kwargs(tmp_path))


def test_fast_mosaic_matches_canvas_warp(tmp_path):
    """The default mosaic (resize straight into the output) gives the picture and boxes of the
    canvas + warpAffine path (forced here with a 1e-9 degree rotation, which draws the same numbers)."""
    from yololab.data.synthetic import synth_shapes

    data = synth_shapes(tmp_path / "shapes", train=8, val=1, imgsz=96, workers=0, progress=False)
    kw = {"buffer_size": 0, "imgsz": 128, "cache_dir": tmp_path / "c", "verbose": False}
    fast = DetectionDataset(data, "train", hyp=PLAIN, **kw)
    warp = DetectionDataset(data, "train", hyp=replace(PLAIN, degrees=1e-9), **kw)
    for i in range(len(fast)):
        a, b = fast[i], warp[i]
        assert (a["img"].float() - b["img"].float()).abs().mean() < 4
        assert len(a["bboxes"]) == len(b["bboxes"])
        torch.testing.assert_close(a["bboxes"] * 128, b["bboxes"] * 128, atol=1.5, rtol=0)


def test_persistent_workers_see_set_epoch_and_close_mosaic(rects, tmp_path):
    hyp = replace(PLAIN, scale=0.0, translate=0.0, fliplr=0.0, close_mosaic=2)
    ds = DetectionDataset(rects, "train", hyp=hyp, buffer_size=0, **ds_kwargs(tmp_path))
    loader = build_dataloader(ds, batch_size=4, workers=2, seed=0)
    assert loader.persistent_workers
    expected = {f: letterbox(ds.load_image(i)[0], (64, 64), scaleup=False)[0].transpose(2, 0, 1)[::-1]
                for i, f in enumerate(ds.files)}

    def letterboxed(batches):
        return [np.array_equal(img.numpy(), expected[f]) for b in batches for img, f in zip(b["img"], b["im_file"])]

    assert not all(letterboxed(_epoch(loader, ds, 0)))  # mosaics

    ds.set_epoch(9, epochs=10)
    assert all(letterboxed(list(loader)))


def test_hsv_in_mosaic_matches_hsv_on_the_finished_image(coco8, tmp_path):
    """Tile-by-tile HSV (the default) gives the boxes exactly and the picture within a level or two of
    HSV on the finished mosaic (Ultralytics' order), on photographs."""
    hyp = replace(AugmentConfig(), blur=0, median_blur=0, to_gray=0, clahe=0)
    kw = {"imgsz": 160, "cache_dir": tmp_path / "c", "verbose": False, "buffer_size": 0, "hyp": hyp}
    tiles, whole = DetectionDataset(coco8, "train", **kw), DetectionDataset(coco8, "train", **kw)
    whole.hsv_in_mosaic = False
    assert tiles.hsv_in_mosaic
    diffs = []
    for epoch in range(3):
        tiles.set_epoch(epoch)
        whole.set_epoch(epoch)
        for i in range(len(tiles)):
            a, b = tiles[i], whole[i]
            assert torch.equal(a["bboxes"], b["bboxes"]) and torch.equal(a["cls"], b["cls"])
            diffs.append((a["img"].float() - b["img"].float()).abs().mean().item())
    assert max(diffs) < 1.5 and np.mean(diffs) < 0.7, diffs
    assert not torch.equal(tiles[0]["img"], DetectionDataset(coco8, "train", **{**kw, "hyp": replace(
        hyp, hsv_h=0, hsv_s=0, hsv_v=0)})[0]["img"])  # HSV did run


def test_large_jpegs_decode_reduced(tmp_path, monkeypatch):
    """A JPEG at least twice the training size is decoded at 1/2, 1/4 or 1/8 size by libjpeg, EXIF
    orientation included; the image and its boxes land where a full decode puts them."""
    from PIL import Image

    from yololab.data.io import read_image, read_jpeg_reduced

    root = tmp_path / "big"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    yy, xx = np.mgrid[0:600, 0:900]
    rgb = np.stack([xx * 255 // 900, yy * 255 // 600, (xx + yy) % 256], -1).astype(np.uint8)
    rgb[200:400, 100:300] = 255  # a white square, labelled
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 900 x 600, shown 600 x 900 (rotated)
    Image.fromarray(rgb).save(root / "images/train/rot.jpg", quality=95, exif=exif)
    Image.fromarray(rgb).save(root / "images/train/plain.jpg", quality=95)
    cv2.imwrite(str(root / "images/train/plain.png"), rgb[..., ::-1])
    for name in ("rot", "plain"):
        (root / "labels/train" / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a]\n")

    full = read_image(root / "images/train/rot.jpg")
    assert full.shape[:2] == (900, 600)
    half = read_jpeg_reduced(str(root / "images/train/rot.jpg"), 3, (900, 600))
    assert half.shape[:2] == (450, 300)
    ref = cv2.resize(full, (300, 450), interpolation=cv2.INTER_AREA)
    assert np.abs(half.astype(int) - ref).mean() < 3  # the same picture, same orientation
    assert read_jpeg_reduced(str(root / "images/train/plain.png"), 4, (600, 900)) is None  # not a JPEG
    assert read_jpeg_reduced(str(root / "images/train/plain.jpg"), 4, (600, 901)) is None  # not the size scanned
    assert read_jpeg_reduced(str(root / "images/train/plain.jpg"), 1, (600, 900)) is None  # nothing to gain

    import yololab.data.dataset as dataset_module

    reduced = []
    monkeypatch.setattr(dataset_module, "read_jpeg_reduced",
                        lambda *a: reduced.append(read_jpeg_reduced(*a)) or reduced[-1])
    ds = DetectionDataset(root / "data.yaml", "train", **ds_kwargs(tmp_path, imgsz=192))
    val = DetectionDataset(root / "data.yaml", "val", augment=False, **ds_kwargs(tmp_path, imgsz=192))
    for i in range(len(ds)):
        img, shape0, shape = ds.load_image(i)
        img_v, shape0_v, shape_v = val.load_image(i)  # validation decodes fully (as the reference does)
        assert shape0 == shape0_v and shape == shape_v == img.shape[:2]
        assert np.abs(img.astype(int) - img_v).mean() < 4
        assert ds[i]["img"].shape == (3, 192, 192)
    assert sorted(x is not None for x in reduced) == [False, True, True]  # the two JPEGs, not the PNG

