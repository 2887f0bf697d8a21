"""CAM methods against the grad-cam package (pytorch-grad-cam 1.5.7), layer errors, the pointing game."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

from yololab.classify import build_classifier
from yololab.classify.cam import CAM, eigen_projection, overlay, pointing_game
from yololab.errors import YololabError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_classifier("resnet18", num_classes=10, width=16)
    with torch.no_grad():  # BN statistics that are not the identity
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.mark.parametrize("ours,ref", [("gradcam", GradCAM), ("gradcam++", GradCAMPlusPlus)])
@pytest.mark.parametrize("target", [None, 3])
def test_parity_with_grad_cam_package(model, ours, ref, target):
    x = torch.randn(3, 3, 96, 80)  # not square: catches a swapped resize
    cam = CAM(model, "layer4", ours)(x, target)
    ref_targets = None if target is None else [ClassifierOutputTarget(target)] * 3
    expected = ref(model=model, target_layers=[model.layer4[-1]])(input_tensor=x, targets=ref_targets)
    assert cam.shape == expected.shape == (3, 96, 80)
    np.testing.assert_allclose(cam, expected, atol=1e-5, rtol=0)
    assert cam.max() > 0.99  # really a map, not all zeros


def test_parity_on_an_inner_layer(model):
    x = torch.randn(2, 3, 64, 64)
    cam = CAM(model, "layer3.1.conv2", "gradcam")(x, [1, 7])
    ref = GradCAM(model=model, target_layers=[model.layer3[1].conv2])
    np.testing.assert_allclose(cam, ref(input_tensor=x, targets=[ClassifierOutputTarget(1), ClassifierOutputTarget(7)]),
                               atol=1e-5, rtol=0)


def test_eigen_projection_matches_reference_up_to_sign(model):
    acts = torch.randn(4, 32, 5, 6)
    ours = eigen_projection(acts, fix_sign=False).numpy()
    ref = get_2d_projection(acts.numpy())
    for o, r in zip(ours, ref):
        sign = np.sign((o * r).sum())
        np.testing.assert_allclose(o, sign * r, atol=1e-4, rtol=1e-4)
    fixed = eigen_projection(acts).numpy()
    assert all(f.max() >= -f.min() for f in fixed)  # the sign fix puts the largest magnitude on the positive side
    cam = CAM(model, "layer4", "eigencam")(torch.randn(2, 3, 64, 64))
    assert cam.shape == (2, 64, 64) and np.isclose(cam.max(), 1, atol=1e-5) and cam.min() >= 0


def test_bad_layer_lists_valid_names(model):
    with pytest.raises(YololabError, match=r"no layer 'layer9'.*valid names: conv1, bn1, relu, maxpool, layer1, "
                                           r"layer1\.0"):
        CAM(model, "layer9")
    with pytest.raises(YololabError, match="unknown CAM method"):
        CAM(model, "layer4", "scorecam")
    with pytest.raises(YololabError, match="does not output"):
        CAM(model, "fc")(torch.randn(1, 3, 32, 32))


def test_pointing_game_and_overlay():
    cams = np.zeros((3, 10, 10), np.float32)
    cams[0, 2, 3] = 1  # max at pixel centre (3.5, 2.5)
    cams[1, 9, 9] = 1
    cams[2, 0, 0] = 1
    boxes = np.array([[3, 2, 4, 3], [0, 0, 5, 5], [0.5, 0.5, 2, 2]])
    assert pointing_game(cams, boxes).tolist() == [True, False, True]
    img = np.full((20, 20, 3), 100, np.uint8)
    out = overlay(img, cams[0])
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8 and not np.array_equal(out[0, 0], out[5, 7])
