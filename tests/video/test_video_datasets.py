"""Sample lists (UCF-101, class folders, frame folders, CSV), clips and layouts, and bad input skipped."""

import shutil

import pytest
import torch

from yololab.errors import DataError
from yololab.video.datasets import (ClipConfig, VideoClipDataset, collate_clips, read_csv, read_folders,
                                    read_ucf101, read_video_list)
from yololab.video.synth import CLASSES


def test_ucf101_splits(tiny_synth):
    train, test = read_ucf101(tiny_synth, True, 1), read_ucf101(tiny_synth, False, 1)
    assert train.classes == CLASSES
    assert len(train.samples) == 20 and len(test.samples) == 20  # groups 1 and 7 of each class are tested
    assert not {p for p, _ in train.samples} & {p for p, _ in test.samples}
    assert all(p.parent.name == CLASSES[label] for p, label in train.samples + test.samples)
    assert len(read_ucf101(tiny_synth, False, 2).samples) == 10
    assert read_video_list(tiny_synth, True).samples == train.samples  # recognised by its classInd.txt


def test_ucf101_split_lines_naming_missing_videos_or_unknown_classes(tiny_synth, tmp_path, capsys):
    root = tmp_path / "ucf"
    shutil.copytree(tiny_synth, root)
    split = root / "ucfTrainTestlist" / "trainlist01.txt"
    split.write_text(split.read_text() + "MoveLeft/v_MoveLeft_g99_c01.avi 1\nJuggle/v_Juggle_g01_c01.avi 11\n")
    videos = read_ucf101(root, True, 1)
    assert len(videos.samples) == 20
    err = capsys.readouterr().err
    assert "trainlist01.txt: line 21: names missing video" in err and "v_MoveLeft_g99_c01.avi" in err
    assert "line 22: class 'Juggle' of Juggle/v_Juggle_g01_c01.avi is not in classInd.txt" in err
    with pytest.raises(DataError, match="split must be 1, 2 or 3"):
        read_ucf101(root, True, 4)


def test_class_folders_stratified_seeded_split(tmp_path):
    for cls, n in (("a", 10), ("b", 5)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            (tmp_path / cls / f"{i}.mp4").write_bytes(b"x")
    train, val = read_folders(tmp_path, True, 0.2, seed=3), read_folders(tmp_path, False, 0.2, seed=3)
    assert train.classes == ["a", "b"]
    assert [lab for _, lab in val.samples].count(0) == 2 and [lab for _, lab in val.samples].count(1) == 1
    assert len(train.samples) + len(val.samples) == 15 and not set(train.samples) & set(val.samples)
    assert read_folders(tmp_path, False, 0.2, seed=3).samples == val.samples
    assert read_folders(tmp_path, False, 0.2, seed=4).samples != val.samples


def test_kinetics_and_path_csv(tmp_path, capsys):
    (tmp_path / "riding a bike").mkdir()
    (tmp_path / "riding a bike" / "abc_000010_000020.mp4").write_bytes(b"x")
    (tmp_path / "surfing").mkdir()
    (tmp_path / "surfing" / "xyz_000000_000010.mp4").write_bytes(b"x")
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("label,youtube_id,time_start,time_end,split\nriding a bike,abc,10,20,train\n"
                        "surfing,xyz,0,10,train\nsurfing,gone,0,10,train\n")
    videos = read_csv(csv_path)
    assert videos.classes == ["riding a bike", "surfing"] and len(videos.samples) == 2
    assert "train.csv: line 4: names missing video" in capsys.readouterr().err
    (tmp_path / "val.csv").write_text("path,label\nsurfing/xyz_000000_000010.mp4,surfing\n")
    val = read_video_list(csv_path, False, val_data=tmp_path / "val.csv", classes=videos.classes)
    assert val.samples == [(tmp_path / "surfing" / "xyz_000000_000010.mp4", 1)]


@pytest.mark.parametrize("layout", ["TCHW", "CTHW"])
def test_clips_layout_and_views(tiny_synth, layout):
    videos = read_ucf101(tiny_synth, True, 1)
    cfg = ClipConfig(clip_len=6, short_side=32, size=28, layout=layout)
    clip, label, index = VideoClipDataset(videos, cfg, train=True)[3]
    assert clip.dtype == torch.uint8 and label == videos.samples[3][1] and index == 3
    assert tuple(clip.shape) == ((6, 3, 28, 28) if layout == "TCHW" else (3, 6, 28, 28))
    views, _, _ = VideoClipDataset(videos, cfg, train=False, num_clips=2, num_crops=3)[3]
    assert views.shape[0] == 6
    assert not torch.equal(views[0], views[2])  # left and right crops differ


def test_training_clips_are_seeded_by_epoch_and_index(tiny_synth):
    videos = read_ucf101(tiny_synth, True, 1)
    cfg = ClipConfig(clip_len=4, sampling="dense", stride=1, short_side=32, size=24)
    a, b = VideoClipDataset(videos, cfg, True, seed=1), VideoClipDataset(videos, cfg, True, seed=1)
    assert torch.equal(a[5][0], b[5][0])
    b.set_epoch(1)
    assert any(not torch.equal(a[i][0], b[i][0]) for i in range(8))


def test_undecodable_video_is_skipped_with_a_warning(tiny_synth, tmp_path, capsys):
    root = tmp_path / "ucf"
    shutil.copytree(tiny_synth, root)
    videos = read_ucf101(root, True, 1)
    bad = videos.samples[0][0]
    bad.write_bytes(bad.read_bytes()[:300])  # truncated inside the first frames
    ds = VideoClipDataset(videos, ClipConfig(clip_len=4, short_side=32, size=28), train=True)
    assert ds[0] is None
    assert str(bad) in capsys.readouterr().err
    clips, labels, index = collate_clips([ds[0], ds[1], ds[2]])
    assert clips.shape[0] == 2 and index.tolist() == [1, 2]
    assert collate_clips([None]) is None


def test_frame_folders_read_like_videos(tiny_synth, tmp_path):
    from yololab.video.extract import extract_frames

    extract_frames(tiny_synth, tmp_path / "frames", workers=0, progress=False)
    cfg = ClipConfig(clip_len=8, sampling="uniform", short_side=32, size=32)
    a = VideoClipDataset(read_ucf101(tiny_synth, False, 1), cfg, train=False)
    b = VideoClipDataset(read_ucf101(tmp_path / "frames", False, 1), cfg, train=False)
    assert len(a) == len(b) and b.videos.samples[0][0].is_dir()
    x, y = a[0][0][0].float(), b[0][0][0].float()  # (T, C, H, W): the same 8 frames, through JPEG
    dist = (x[:, None] - y[None]).abs().mean((2, 3, 4))  # frame i of the video vs frame j of the folder
    assert (dist.argmin(1) == torch.arange(8)).all() and dist.diagonal().max() < 10
