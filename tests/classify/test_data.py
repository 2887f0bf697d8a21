"""CIFAR python format (folder, .tar.gz, CIFAR-100, bad files), the synthetic set, ImageFolder, augmentation."""

from __future__ import annotations

import pickle
import shutil
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from yololab.classify.cifar import Split, read_cifar, write_cifar10
from yololab.classify.data import (
    AugmentConfig,
    MixCollate,
    load_data,
    load_image,
    make_loader,
)
from yololab.classify.synth import CLASSES, make_split, synth_classify
from yololab.errors import DataError


def test_synth_is_cifar10_python_format(synth_set):
    files = sorted(p.name for p in synth_set.iterdir())
    assert files == ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                     "data_batch_5", "synth.json", "test_batch"]
    with open(synth_set / "data_batch_1", "rb") as f:  # read the way torchvision's CIFAR10 reads it
        batch = pickle.load(f, encoding="latin1")
    assert batch["data"].shape == (12, 3072) and batch["data"].dtype == np.uint8 and len(batch["labels"]) == 12
    with open(synth_set / "batches.meta", "rb") as f:
        assert pickle.load(f, encoding="latin1")["label_names"] == CLASSES[:4]
    train = read_cifar(synth_set, "train")
    again = make_split(0, 60, 3, 32, 4)  # image i depends on seed + i only
    np.testing.assert_array_equal(train.images, again.images)
    np.testing.assert_array_equal(train.labels, again.labels)
    np.testing.assert_allclose(train.boxes, again.boxes)
    val = read_cifar(synth_set, "val")
    assert len(val) == 30 and set(val.labels) <= {0, 1, 2, 3} and val.boxes.shape == (30, 4)
    w, h = val.boxes[:, 2] - val.boxes[:, 0], val.boxes[:, 3] - val.boxes[:, 1]
    assert (w > 5).all() and (h > 5).all() and (val.boxes >= 0).all() and (val.boxes <= 32).all()


def test_synth_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="not an empty folder nor an earlier"):
        synth_classify(tmp_path, train=4, val=2, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    with pytest.raises(DataError, match="--classes must be between 2 and 10"):
        synth_classify(tmp_path / "new", classes=11, progress=False)


def test_tar_gz_and_parent_folder(synth_set, tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(synth_set, arcname="cifar-10-batches-py")
    shutil.copytree(synth_set, tmp_path / "parent" / "cifar-10-batches-py")
    ref = read_cifar(synth_set, "val")
    for path in (archive, tmp_path, tmp_path / "parent"):
        got = read_cifar(path, "val")
        np.testing.assert_array_equal(got.images, ref.images)
        assert got.names == ref.names


def test_cifar100_layout(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 8), ("test", 4)):
        d = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": list(range(n)),
             "coarse_labels": [0] * n, "filenames": [f"{i}.png" for i in range(n)]}
        (root / name).write_bytes(pickle.dumps(d, protocol=2))
    (root / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)],
                                              "coarse_label_names": ["x"]}, protocol=2))
    s = read_cifar(tmp_path, "train")
    assert s.images.shape == (8, 32, 32, 3) and len(s.names) == 100 and s.boxes is None
    d = pickle.loads((root / "train").read_bytes())
    np.testing.assert_array_equal(s.images[3, 0, 0], d["data"][3, [0, 1024, 2048]])  # planes: R, G, B


class Evil:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-yololab",))


def test_missing_and_corrupt_batches_are_skipped_with_a_warning(synth_set, tmp_path, capsys):
    root = shutil.copytree(synth_set, tmp_path / "c")
    (root / "data_batch_2").unlink()
    (root / "data_batch_3").write_bytes(b"\x80\x04garbage")
    (root / "data_batch_4").write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    s = read_cifar(root, "train")
    err = capsys.readouterr().err
    assert f"{root / 'data_batch_2'}: file missing; skipped" in err
    assert f"{root / 'data_batch_3'}: corrupt CIFAR batch" in err
    assert "shutil.rmtree is not allowed" in err  # refused, never called
    assert len(s) == 24  # batches 1 and 5, 12 images each
    for f in ("data_batch_1", "data_batch_5"):
        (root / f).unlink()
    with pytest.raises(DataError, match="no readable train batch"):
        read_cifar(root, "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no CIFAR data here"):
        read_cifar(tmp_path / "empty")


def write_folder(root, channels_of=lambda i: "RGB", n=3, classes=("ant", "bee")):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            for i in range(n):
                mode = channels_of(i)
                shape = (20, 24) if mode == "L" else (20, 24, 3)
                p = root / split / c / f"{i}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(p)
    return root


def test_image_folder(tmp_path, capsys):
    root = write_folder(tmp_path / "f")
    (root / "train" / "bee" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    Image.fromarray(np.zeros((20, 20), np.uint8), "L").save(root / "train" / "ant" / "gray.png")
    data = load_data(root, imgsz=16)
    assert data.names == ["ant", "bee"] and len(data.train) == 8 and len(data.val) == 6
    seen = []
    for x, y, idx in make_loader(data.dataset("train", AugmentConfig()), 4, shuffle=False):
        assert x.shape[1:] == (3, 16, 16) and x.dtype == torch.float32
        seen += idx.tolist()
    assert len(seen) == 6  # the broken and the gray file skipped
    err = capsys.readouterr().err
    assert "broken.jpg: cannot decode image" in err and "gray.png: a 1-channel (L) image, but the model takes " \
                                                      "3-channel images" in err
    with pytest.raises(DataError, match="a 3-channel"):
        load_image(root / "val" / "ant" / "0.png", channels=1)
    gray = write_folder(tmp_path / "g", channels_of=lambda i: "L")
    d1 = load_data(gray, imgsz=16, channels=1)
    x, _, _ = next(iter(make_loader(d1.dataset("val"), 6, shuffle=False)))
    assert x.shape == (6, 1, 16, 16) and len(d1.mean) == 1
    (gray / "val" / "wasp").mkdir()
    with pytest.raises(DataError, match="class folder.*wasp.*not among the training classes"):
        load_data(gray, channels=1)


def test_augmentation_and_mixing(synth_set):
    data = load_data(synth_set)
    assert data.imgsz == 32 and data.num_classes == 4 and len(data.mean) == 3
    ds = data.dataset("train", AugmentConfig(pad=4, fliplr=0.5, auto_augment="trivialaugment"))
    x, y, i = ds[0]
    assert x.shape == (3, 32, 32) and y == int(data.train.labels[0]) and i == 0
    val = data.dataset("val")
    ref = (torch.from_numpy(data.val.images[0]).permute(2, 0, 1) / 255 - torch.tensor(data.mean)[:, None, None]) \
        / torch.tensor(data.std)[:, None, None]
    torch.testing.assert_close(val[0][0], ref)  # validation: no augmentation, just normalization
    torch.manual_seed(0)
    mix = MixCollate(4, mixup=0.2, cutmix=1.0, prob=1.0)
    x, y, idx = mix([ds[k] for k in range(8)])
    assert y.shape == (8, 4) and torch.allclose(y.sum(1), torch.ones(8)) and (y < 1).any()
    off = MixCollate(4)
    assert off([ds[k] for k in range(8)])[1].shape == (8,)
    # the same (seed, epoch) gives the same order; another epoch another one
    order = lambda e: [int(i) for b in make_loader(val, 10, True, seed=1, epoch=e) for i in b[2]]
    assert order(0) == order(0) != order(1) and sorted(order(1)) == list(range(30))


def test_write_cifar10_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (7, 20, 20, 3), dtype=np.uint8)
    s = Split(imgs, np.arange(7) % 2, ["a", "b"])
    write_cifar10(tmp_path, s, s, num_train_batches=3)
    got = read_cifar(tmp_path, "train")
    np.testing.assert_array_equal(got.images, imgs)  # 20 px side read from the row length
    assert got.boxes is None


def test_seeded_augmentation_does_not_depend_on_workers(synth_set):
    data = load_data(synth_set)
    ds = data.dataset("train", AugmentConfig(auto_augment="randaugment"))
    ds.seed = (1, 0)
    a, b = ds[5][0], ds[5][0]
    torch.testing.assert_close(a, b)  # a pure function of (seed, epoch, index)
    ds.seed = (1, 1)
    assert not torch.equal(ds[5][0], a)  # another epoch, another augmentation
    mix = MixCollate(4, mixup=0.2, cutmix=1.0, seed=(1, 1))
    batches = [[torch.cat([b[0].flatten(), b[1].flatten().float()]) for b in
                make_loader(ds, 8, shuffle=False, workers=w, collate=mix)] for w in (0, 2)]
    for x, y in zip(*batches):
        torch.testing.assert_close(x, y)


def test_cutmix_equals_torchvision_for_the_same_box(synth_set):
    """The training loader's CutMix batches are torchvision.transforms.v2.CutMix's for the box and lambda
    they were drawn with: one rectangle pasted from the previous sample of the batch, in (B, C, H, W) float
    images after normalization, and soft labels weighted by the rectangle's area; validation stays unmixed."""
    from torchvision.transforms import v2

    from yololab.classify.data import skip_none_collate
    from yololab.classify.task import ClassifyTask
    from yololab.engine import TrainConfig

    task = ClassifyTask(TrainConfig(batch=8, seed=2, workers=0), data=str(synth_set), cutmix=1.0)
    loader = task.train_loader(epoch=1)
    reference = v2.CutMix(alpha=1.0, num_classes=4)
    areas = []
    for x, y, index in loader:
        plain_x, plain_y, _ = skip_none_collate([loader.dataset[int(i)] for i in index])
        assert x.shape == plain_x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (8, 4)
        changed = (x != plain_x).any(1).any(0)
        ys, xs = torch.nonzero(changed, as_tuple=True)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(ys) else (0, 0, 0, 0)
        lam = 1 - (box[2] - box[0]) * (box[3] - box[1]) / 32 ** 2
        params = {"box": box, "lam_adjusted": lam, "labels": plain_y, "batch_size": 8}
        torch.testing.assert_close(x, reference.transform(plain_x, params), rtol=0, atol=0)
        torch.testing.assert_close(y, reference.transform(plain_y, params), rtol=0, atol=0)
        areas.append(1 - lam)
    assert 0.05 < float(np.mean(areas)) < 0.7  # Beta(1, 1) areas, clipped at the border: about 0.3 on average
    _, val_y, _ = next(iter(make_loader(task.data.dataset("val"), 8, shuffle=False)))
    assert val_y.shape == (8,)  # no mixing at validation
