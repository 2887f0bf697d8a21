"""Class activation maps from hooks: Grad-CAM, Grad-CAM++ and EigenCAM, and the pointing game.

A forward hook on the chosen layer keeps its output ``A`` (B, K, h, w); for the gradient methods
``torch.autograd.grad`` of the target score with respect to ``A`` gives ``dA``. Then, per image:

* **Grad-CAM** (Selvaraju et al., 2017): ``relu(sum_k w_k A_k)`` with ``w_k`` = the spatial mean of ``dA_k``.
* **Grad-CAM++** (Chattopadhay et al., 2018, eq. 19): ``w_k = sum_ij relu(dA_kij) a_kij`` with
  ``a = dA^2 / (2 dA^2 + sum_ij(A_k) dA^3 + 1e-6)`` (0 where ``dA`` is 0).
* **EigenCAM** (Muhammad & Yeasin, 2020): no gradient, no target: the projection of the centred
  activations (h*w points in K dimensions) on their first principal direction. Its sign is arbitrary
  (SVD's); we flip it so that the largest magnitude is positive (the correction of Seg-Eigen-CAM,
  Chung & Ying 2025), where grad-cam 1.5.7 keeps whatever sign the SVD returns.

Scaling follows grad-cam 1.5.7 so that the maps can be compared number for number (the parity test,
tests/classify/test_cam.py): each map is shifted to a minimum of 0 and divided by ``1e-7 + max``,
resized bilinearly (half-pixel centres, as OpenCV) to the input size, and scaled the same way again. A
layer that returns several maps (a detector's neck: P3, P4, P5) gets one map per level, averaged after
resizing, as that package does for several target layers.

Pointing game (Zhang et al., 2016): a hit when the CAM's maximum falls inside the object's box.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from yololab.errors import YololabError

METHODS = ("gradcam", "gradcam++", "eigencam")


def layer_names(model: nn.Module, depth: int = 2) -> list[str]:
    """Module names up to ``depth`` dots deep (what an error message can list)."""
    return [n for n, _ in model.named_modules() if n and n.count(".") < depth]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """``model.get_submodule(name)``, or a YololabError listing the valid names."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        deeper = next((n for n in layer_names(model, 3) if n.count(".") == 2), None)
        more = f" (and their sub-modules, e.g. {deeper})" if deeper else ""
        raise YololabError(f"no layer {name!r} in {type(model).__name__}; valid names: "
                           f"{', '.join(layer_names(model))}{more}") from None


def default_layer(model: nn.Module) -> str:
    """The usual CAM layer: a ResNet's last stage; a detector's neck (all its output levels)."""
    for name in ("layer4", "neck"):
        if hasattr(model, name):
            return name
    raise YololabError(f"{type(model).__name__} has no default CAM layer; give --layer "
                       f"(valid names: {', '.join(layer_names(model))})")


def scale01(cam: torch.Tensor) -> torch.Tensor:
    """Per map (last two dims): subtract the minimum, divide by 1e-7 + the maximum (grad-cam's scaling)."""
    flat = cam.flatten(-2)
    flat = flat - flat.min(-1, keepdim=True).values
    flat = flat / (1e-7 + flat.max(-1, keepdim=True).values)
    return flat.view_as(cam)


def eigen_projection(acts: torch.Tensor, fix_sign: bool = True) -> torch.Tensor:
    """(B, K, h, w) -> (B, h, w): the centred activations projected on their first principal direction."""
    b, k, h, w = acts.shape
    m = acts.flatten(2).transpose(1, 2).double()  # (B, hw, K)
    m = m - m.mean(1, keepdim=True)
    _, _, vh = torch.linalg.svd(m, full_matrices=False)
    proj = (m @ vh[:, 0, :, None]).squeeze(-1)  # (B, hw)
    if fix_sign:
        flip = proj.max(1).values.abs() < proj.min(1).values.abs()
        proj = torch.where(flip[:, None], -proj, proj)
    return proj.view(b, h, w).float()


def _cam_of_level(method: str, a: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
    if method == "eigencam":
        return eigen_projection(a)
    if method == "gradcam":
        weights = g.mean((2, 3))
    else:  # gradcam++
        g2 = g * g
        g3 = g2 * g
        alpha = g2 / (2 * g2 + a.sum((2, 3), keepdim=True) * g3 + 1e-6)
        alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
        weights = (g.clamp(min=0) * alpha).sum((2, 3))
    return (weights[:, :, None, None] * a).sum(1)


class CAM:
    """``CAM(model, "layer4", "gradcam")(x, target)`` -> (B, H, W) float32 maps in [0, 1] at the input's size.

    ``target``: None (each image's top class), an int or a list of ints (class per image), or a callable
    taking the model output and returning one score per image (a detection's score, for a detector).
    The model is put in eval mode. ``last_output`` keeps the model output of the last call.
    """

    def __init__(self, model: nn.Module, layer: str | None = None, method: str = "gradcam"):
        if method not in METHODS:
            raise YololabError(f"unknown CAM method {method!r}; choose from {', '.join(METHODS)}")
        self.model, self.method = model.eval(), method
        self.layer_name = layer or default_layer(model)
        self.layer = resolve_layer(model, self.layer_name)
        self.last_output = None

    def _target_scores(self, out: torch.Tensor, target) -> torch.Tensor:
        if callable(target):
            return target(out)
        if target is None:
            classes = out.argmax(1)
        elif isinstance(target, int):
            classes = torch.full((out.shape[0],), target, dtype=torch.long)
        else:
            classes = torch.as_tensor(target, dtype=torch.long)
        return out.gather(1, classes.to(out.device)[:, None]).squeeze(1)

    def __call__(self, x: torch.Tensor, target: int | list[int] | Callable | None = None) -> np.ndarray:
        kept: list[torch.Tensor] = []

        def hook(module, inputs, output):
            kept[:] = list(output) if isinstance(output, (list, tuple)) else [output]

        handle = self.layer.register_forward_hook(hook)
        try:
            with torch.enable_grad():
                x = x.detach().clone().requires_grad_(True)  # a graph even when the weights are frozen
                out = self.model(x)
                if not kept or any(t.ndim != 4 for t in kept):
                    raise YololabError(f"layer {self.layer_name!r} does not output (B, C, H, W) feature maps; "
                                       f"choose a convolutional layer")
                grads = [None] * len(kept)
                if self.method != "eigencam":
                    score = self._target_scores(out, target).sum()
                    grads = torch.autograd.grad(score, kept, allow_unused=True)
                    grads = [torch.zeros_like(a) if g is None else g for a, g in zip(kept, grads)]
        finally:
            handle.remove()
        self.last_output = out.detach() if isinstance(out, torch.Tensor) else out
        size = x.shape[-2:]
        maps = []
        with torch.no_grad():
            for a, g in zip(kept, grads):
                cam = _cam_of_level(self.method, a.detach().float(), None if g is None else g.float())
                cam = scale01(cam.clamp(min=0))
                maps.append(F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0])
            cam = scale01(torch.stack(maps, 1).clamp(min=0).mean(1))
        return cam.cpu().numpy().astype(np.float32)


def pointing_game(cams: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per image, True when the CAM's maximum (its pixel centre) lies inside the box x1, y1, x2, y2."""
    b, h, w = cams.shape
    idx = cams.reshape(b, -1).argmax(1)
    y, x = idx // w + 0.5, idx % w + 0.5
    boxes = np.asarray(boxes, np.float64)
    return (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])


def overlay(image: np.ndarray, cam: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """An RGB uint8 image with the CAM drawn over it in the jet colour map (``weight`` of the image kept)."""
    import cv2

    if image.ndim == 2 or image.shape[2] == 1:
        image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
    if cam.shape != image.shape[:2]:
        cam = cv2.resize(cam, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap(np.uint8(255 * np.clip(cam, 0, 1)), cv2.COLORMAP_JET)[..., ::-1]
    return np.uint8(np.clip(weight * image + (1 - weight) * heat, 0, 255))
