"""Frame sampling (uniform, TSN segments, dense), short videos (loop / pad) and crops."""

import numpy as np
import pytest

from yololab.video.sampling import crop_boxes, sample_indices


def test_uniform_spreads_over_the_video():
    idx = sample_indices(100, 4, "uniform")
    assert idx.tolist() == [12, 37, 62, 87]
    clips = [sample_indices(100, 4, "uniform", clip=c, num_clips=2).tolist() for c in range(2)]
    assert clips == [[6, 31, 56, 81], [18, 43, 68, 93]]


def test_segment_takes_one_random_frame_per_segment():
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = sample_indices(80, 8, "segment", rng=rng)
        assert ((idx >= np.arange(8) * 10) & (idx < np.arange(1, 9) * 10)).all()
    assert sample_indices(80, 8, "segment").tolist() == sample_indices(80, 8, "uniform").tolist()


def test_dense_is_a_strided_window():
    rng = np.random.default_rng(1)
    starts = set()
    for _ in range(30):
        idx = sample_indices(50, 8, "dense", stride=2, rng=rng)
        assert (np.diff(idx) == 2).all() and idx[0] >= 0 and idx[-1] <= 49
        starts.add(int(idx[0]))
    assert len(starts) > 5  # random starts
    test = [sample_indices(50, 8, "dense", stride=2, clip=c, num_clips=3)[0] for c in range(3)]
    assert test == sorted(test) and len(set(test)) == 3  # evenly spread test clips


@pytest.mark.parametrize("mode", ["uniform", "segment", "dense"])
def test_short_videos_loop_or_pad(mode):
    assert sample_indices(3, 7, mode, short="loop").tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert sample_indices(3, 7, mode, short="pad").tolist() == [0, 1, 2, 2, 2, 2, 2]


def test_bad_arguments():
    with pytest.raises(ValueError, match="sampling"):
        sample_indices(10, 4, "random")
    with pytest.raises(ValueError, match="short"):
        sample_indices(10, 4, short="cut")


def test_crop_boxes():
    assert crop_boxes(72, 96, 64) == [(4, 16)]
    assert crop_boxes(72, 96, 64, 3) == [(4, 0), (4, 16), (4, 32)]  # along the longer side
    assert crop_boxes(96, 72, 64, 3) == [(0, 4), (16, 4), (32, 4)]
    y, x = crop_boxes(72, 96, 64, rng=np.random.default_rng(0))[0]
    assert 0 <= y <= 8 and 0 <= x <= 32
    with pytest.raises(ValueError, match="larger than the frame"):
        crop_boxes(50, 60, 64)
