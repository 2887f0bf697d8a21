"""Video models: parity with torchvision's R3D-18 / R(2+1)D-18, attention vs torch, forward on real clips."""

import pytest
import torch
import torchvision
from torch import nn

from yololab.errors import WeightsError
from yololab.video.datasets import ClipConfig, VideoClipDataset, VideoList
from yololab.video.models import build_video_model, list_video_models, load_pretrained
from yololab.video.models.timesformer import Attention
from yololab.video.task import normalize

from video_fixtures import AVI, MP4


@pytest.mark.parametrize("name, reference, params", [
    ("r3d_18", torchvision.models.video.r3d_18, 33_371_472),
    ("r2plus1d_18", torchvision.models.video.r2plus1d_18, 31_505_325),
])
def test_3d_resnets_equal_torchvision(name, reference, params, tmp_path):
    torch.manual_seed(0)
    ref = reference(weights=None).eval()
    if name == "r3d_18":  # from a file, as a user would have torchvision's Kinetics-400 weights on disk
        torch.save(ref.state_dict(), tmp_path / f"{name}.pth")
        ours = build_video_model(name, 400, weights=tmp_path / f"{name}.pth").eval()
    else:
        ours = build_video_model(name, 400).eval()
        ours.load_state_dict(ref.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == params
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))


@pytest.mark.parametrize("kernel, padding", [((3, 1, 1), (1, 0, 0)), (3, 1)])
def test_conv3d_bf16_weight_gradient_on_two_frames(kernel, padding):
    """The 2-frame calls whose CPU bf16 weight gradient PyTorch gets wrong (inf/NaN) give float32's here."""
    from yololab.video.models.conv3d import Conv3d

    torch.manual_seed(0)
    conv = Conv3d(64, 64, kernel, padding=padding, bias=False)
    x = torch.randn(4, 64, 2, 4, 4)
    conv(x).sum().backward()
    reference, conv.weight.grad = conv.weight.grad.clone(), None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    y.float().sum().backward()
    assert torch.isfinite(conv.weight.grad).all()
    torch.testing.assert_close(conv.weight.grad, reference, rtol=1e-5, atol=1e-4)


def test_r2plus1d_trains_under_bf16_autocast():
    """R(2+1)D-18 reaches 2 frames at layer 3 for 8-frame clips; with nn.Conv3d its bf16 gradients there were
    non-finite from the second step (the engine stopped the run at its third batch)."""
    torch.manual_seed(0)
    model = build_video_model("r2plus1d_18", 4).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(3):
        x, y = torch.randn(2, 3, 8, 16, 16), torch.randint(0, 4, (2,))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        optimizer.step()


def test_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    ours, ref = Attention(32, 4), nn.MultiheadAttention(32, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(3, 10, 32)
    torch.testing.assert_close(ours(x), ref(x, x, x, need_weights=False)[0], atol=1e-6, rtol=1e-5)


def _real_clip(path, layout, frames, size):
    cfg = ClipConfig(clip_len=frames, sampling="uniform", short_side=size, size=size, layout=layout)
    ds = VideoClipDataset(VideoList([(path, 0)], ["a"]), cfg, train=False)
    return normalize(ds[0][0], layout, "imagenet")  # (1, ...) one view


TINY = {"timesformer": {"dim": 32, "depth": 1, "heads": 2, "patch": 8, "frames": 8, "img_size": 32},
        "c3d": {"fc_dim": 64}}


@pytest.mark.parametrize("name", list_video_models())
def test_forward_on_real_clips(name):
    torch.manual_seed(0)
    model = build_video_model(name, 5, **TINY.get(name, {})).eval()
    frames = 16 if name == "c3d" else 8
    x = torch.cat([_real_clip(p, model.input_layout, frames, 32) for p in (AVI, MP4)])
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 5) and torch.isfinite(y).all()
    assert not torch.allclose(y[0], y[1])  # two different videos, two different outputs


def test_order_matters_to_the_lstm_not_to_the_control():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 3, 32, 32)
    lstm, avg = build_video_model("cnn_lstm", 4).eval(), build_video_model("frame_avg", 4).eval()
    with torch.no_grad():
        assert not torch.allclose(lstm(x), lstm(x.flip(1)), atol=1e-5)
        torch.testing.assert_close(avg(x), avg(x.flip(1)), atol=1e-5, rtol=1e-4)


def test_residual_frames_ignore_what_does_not_move():
    """frame_input='residual': a still background added to every frame changes nothing; order still matters
    to the LSTM and still not to the control."""
    torch.manual_seed(0)
    x, still = torch.randn(2, 4, 3, 32, 32), torch.randn(2, 1, 3, 32, 32)
    lstm = build_video_model("cnn_lstm", 4, frame_input="residual").eval()
    avg = build_video_model("frame_avg", 4, frame_input="residual").eval()
    plain = build_video_model("cnn_lstm", 4).eval()
    plain.load_state_dict(lstm.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(lstm(x + still), lstm(x), atol=1e-4, rtol=1e-4)
        assert not torch.allclose(plain(x + still), plain(x), atol=1e-3)
        assert not torch.allclose(lstm(x), lstm(x.flip(1)), atol=1e-5)
        torch.testing.assert_close(avg(x), avg(x.flip(1)), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="frame_input must be one of rgb, residual, motion"):
        build_video_model("cnn_lstm", 4, frame_input="flow")


def test_motion_frames_cancel_the_still_background_and_tell_the_direction_in_one_frame(tmp_path, capsys):
    """frame_input='motion': residual + difference from the previous frame (6 channels). A still background
    cancels; the first frame's difference is zero; a clip played backwards gives other per-frame features (the
    difference changes sign), which is why the control refuses the option; resnet18 weights load except conv1."""
    torch.manual_seed(0)
    x, still = torch.randn(2, 4, 3, 32, 32), torch.randn(2, 1, 3, 32, 32)
    lstm = build_video_model("cnn_lstm", 4, frame_input="motion").eval()
    assert lstm.encoder.conv1.in_channels == 6
    seen = []
    hook = lstm.encoder.conv1.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    with torch.no_grad():
        torch.testing.assert_close(lstm(x + still), lstm(x), atol=1e-4, rtol=1e-4)
        lstm(x)
    hook.remove()
    frames = seen[-1].view(2, 4, 6, 32, 32)
    torch.testing.assert_close(frames[:, :, :3], x - x.mean(1, keepdim=True))
    assert frames[:, 0, 3:].abs().max() == 0
    torch.testing.assert_close(frames[:, 2, 3:], x[:, 2] - x[:, 1])
    with torch.no_grad():  # per frame, the reversed clip's features differ (a mean over them would see order)
        f, fr = lstm.frame_features(x), lstm.frame_features(x.flip(1))
    assert not torch.allclose(f.mean(1), fr.mean(1), atol=1e-4)
    with pytest.raises(ValueError, match="control must stay blind"):
        build_video_model("frame_avg", 4, frame_input="motion")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    assert load_pretrained(lstm, tmp_path / "resnet18.pth") == ["conv1.weight"]
    assert "conv1.weight (another shape: left at initialization)" in capsys.readouterr().out


def test_frozen_encoder_stays_frozen_and_resnet18_weights_load(tmp_path):
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None)
    torch.save(ref.state_dict(), tmp_path / "resnet18.pth")
    model = build_video_model("cnn_gru", 3, weights=tmp_path / "resnet18.pth", freeze_encoder=True, layers=2,
                              pool="mean")
    assert torch.equal(model.encoder.conv1.weight, ref.conv1.weight)
    model.train()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    out = model(torch.randn(2, 3, 3, 32, 32))
    out.sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.fc.weight.grad is not None
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())  # BN stats too


def test_bad_weights_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pt: not a PyTorch state dict"):
        build_video_model("frame_avg", 4, weights=tmp_path / "junk.pt")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(WeightsError, match="resnet18.pth: does not fit TimeSformer"):
        build_video_model("timesformer", 4, weights=tmp_path / "resnet18.pth", **TINY["timesformer"])
    torch.save(build_video_model("frame_avg", 400).state_dict(), tmp_path / "avg400.pth")
    assert load_pretrained(build_video_model("frame_avg", 7), tmp_path / "avg400.pth") == ["fc.weight", "fc.bias"]
