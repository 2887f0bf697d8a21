"""Parameter groups, warmup and schedules, EMA: against Ultralytics' own code and torch's OneCycleLR."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from ultralytics.engine.trainer import BaseTrainer
from ultralytics.utils.torch_utils import ModelEMA as UltralyticsEMA

from yololab.engine.ema import ModelEMA
from yololab.engine.optim import build_optimizer, default_param_groups
from yololab.engine.schedule import Schedule


class RMSNormFromPrimitives(nn.Module):  # a task's own norm, not a torch.nn class
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return x * self.weight / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()


def conv_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.SiLU(), nn.Conv2d(8, 8, 1, bias=False),
                         nn.GroupNorm(2, 8), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def ids(params):
    return {id(p) for p in params}


def test_param_groups_match_ultralytics_build_optimizer():
    model = conv_net()
    ours = build_optimizer(default_param_groups(model), "SGD", lr=0.01, momentum=0.937, weight_decay=5e-4)
    fake = SimpleNamespace(args=SimpleNamespace())
    ref = BaseTrainer.build_optimizer(fake, model, name="SGD", lr=0.01, momentum=0.937, decay=5e-4)
    ref_groups = {g["param_group"]: g for g in ref.param_groups}
    our_groups = {g["param_group"]: g for g in ours.param_groups}
    for ref_name, our_name in (("weight", "weight"), ("bn", "norm"), ("bias", "bias")):
        assert ids(our_groups[our_name]["params"]) == ids(ref_groups[ref_name]["params"])
        assert our_groups[our_name]["weight_decay"] == ref_groups[ref_name]["weight_decay"]
        assert our_groups[our_name]["nesterov"] and our_groups[our_name]["momentum"] == 0.937
    assert our_groups["weight"]["weight_decay"] == 5e-4 and our_groups["norm"]["weight_decay"] == 0.0


def test_param_groups_no_decay_on_any_norm_or_bias():
    model = nn.ModuleDict({"attn": nn.MultiheadAttention(8, 2), "ln": nn.LayerNorm(8),
                           "rms": RMSNormFromPrimitives(8), "fc": nn.Linear(8, 8)})
    groups = {g["param_group"]: g for g in default_param_groups(model)}
    assert ids(groups["norm"]["params"]) == {id(model["ln"].weight), id(model["rms"].weight)}
    assert ids(groups["bias"]["params"]) == {id(model["attn"].in_proj_bias), id(model["attn"].out_proj.bias),
                                             id(model["ln"].bias), id(model["fc"].bias)}
    assert ids(groups["weight"]["params"]) == {id(model["attn"].in_proj_weight), id(model["attn"].out_proj.weight),
                                               id(model["fc"].weight)}
    assert groups["norm"]["weight_decay"] == groups["bias"]["weight_decay"] == 0.0
    assert "weight_decay" not in groups["weight"]  # gets the run's (scaled) decay
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_betas_and_group_lr(name):
    model = nn.Linear(3, 3)
    groups = default_param_groups(model)
    groups[0]["lr"] = 0.5  # a group with its own base LR
    opt = build_optimizer(groups, name, lr=0.01, momentum=0.9, weight_decay=0.1, beta2=0.98)
    assert type(opt).__name__ == name
    assert opt.param_groups[0]["betas"] == (0.9, 0.98)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.5, 0.01, 0.01]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0, 0.0]


def ultralytics_lf(cos_lr: bool, lrf: float, epochs: int):
    """The LR lambda that Ultralytics' BaseTrainer._setup_scheduler makes."""
    fake = SimpleNamespace(args=SimpleNamespace(cos_lr=cos_lr, lrf=lrf), epochs=epochs,
                           optimizer=torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1))
    BaseTrainer._setup_scheduler(fake)
    return fake.lf


@pytest.mark.parametrize("scheduler,cos_lr", [("linear", False), ("cosine", True)])
def test_schedule_equals_ultralytics_lambda(scheduler, cos_lr):
    epochs, nb, lrf = 7, 5, 0.05
    ref = ultralytics_lf(cos_lr, lrf, epochs)
    ours = Schedule(scheduler, epochs, nb, lrf)
    for it in range(epochs * nb + 1):  # at fractional epochs too: the same curve, sampled per batch
        assert ours.lf(it) == pytest.approx(ref(it / nb), abs=1e-12)


def test_warmup_equals_ultralytics_formulas():
    """Ultralytics' trainer (_do_train, 'Warmup'): np.interp over [0, nw] of accumulate 1 -> nominal, bias LR
    from warmup_bias_lr and other LRs from 0 to initial_lr * lf, momentum from warmup_momentum."""
    epochs, nb, lrf, acc0 = 10, 20, 0.01, 4
    warmup_epochs, wm, m, wb = 3.0, 0.8, 0.937, 0.1
    nw = BaseTrainer._get_warmup_iterations(SimpleNamespace(args=SimpleNamespace(warmup_epochs=warmup_epochs),
                                                            epochs=epochs), nb)
    lf = ultralytics_lf(False, lrf, epochs)
    sched = Schedule("linear", epochs, nb, lrf, acc0, warmup_epochs, None, m, wm, wb)
    assert sched.nw == nw == 60
    model = conv_net()
    opt = build_optimizer(default_param_groups(model), "SGD", lr=0.01, momentum=m, weight_decay=5e-4)
    for it in (0, 1, 7, 20, 33, 59, 60, 61, 100, 199):
        sched.apply(opt, it)
        xi = [0, nw]
        warm = it <= nw
        assert sched.accumulate(it) == (max(1, int(np.interp(it, xi, [1, acc0]).round())) if warm else acc0)
        for g in opt.param_groups:
            target = g["initial_lr"] * lf(it / nb)
            start = wb if g["param_group"] == "bias" else 0.0
            assert g["lr"] == pytest.approx(float(np.interp(it, xi, [start, target])) if warm else target, abs=1e-15)
            assert g["momentum"] == pytest.approx(float(np.interp(it, xi, [wm, m])) if warm else m, abs=1e-15)
        if it % nb == 0:  # at epoch starts also Ultralytics' per-epoch value lf(epoch), exactly
            g = opt.param_groups[0]
            assert g["lr"] == pytest.approx(np.interp(it, xi, [0.0, g["initial_lr"] * lf(it // nb)]) if warm
                                            else g["initial_lr"] * lf(it // nb), abs=1e-15)


def test_warmup_leaves_last_epoch_and_warmup_steps_override():
    assert Schedule("linear", 2, 10, 0.01, warmup_epochs=3.0).nw == 10  # capped to epochs - 1
    assert Schedule("linear", 1, 10, 0.01, warmup_epochs=3.0).nw == 0
    assert Schedule("linear", 5, 10, 0.01, warmup_epochs=3.0, warmup_steps=7).nw == 7


def test_onecycle_equals_torch_onecyclelr():
    epochs, nb, lrf, lr0 = 4, 25, 0.01, 0.1
    sched = Schedule("onecycle", epochs, nb, lrf)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr0)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr0, total_steps=epochs * nb, pct_start=0.3,
                                              div_factor=25, final_div_factor=1 / (25 * lrf),
                                              cycle_momentum=False, three_phase=False)
    for it in range(epochs * nb):
        assert lr0 * sched.lf(it) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        ref.step()
    assert sched.lf(epochs * nb - 1) == pytest.approx(lrf)


def test_inverse_sqrt_and_constant():
    s = Schedule("inverse_sqrt", 10, 100, 0.01, warmup_steps=40)
    assert [s.lf(it) for it in (0, 40, 160, 640)] == pytest.approx([1.0, 1.0, 0.5, 0.25])
    assert Schedule("constant", 10, 100, 0.01).lf(999) == 1.0


def test_ema_matches_hand_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = ModelEMA(model, decay=0.9, tau=2.0)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for update in range(1, 4):
        model.train()(torch.randn(8, 3))  # moves the BN running stats and num_batches_tracked
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema.update(model)
        d = 0.9 * (1 - math.exp(-update / 2.0))
        for k, v in model.state_dict().items():
            expected[k] = d * expected[k] + (1 - d) * v if v.is_floating_point() else v.clone()
    for k, v in ema.module.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=1e-6, atol=1e-7)
    assert ema.module.state_dict()["1.num_batches_tracked"] == 3 and ema.updates == 3
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())


def test_ema_equals_ultralytics_model_ema():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.SiLU())
    ours, ref = ModelEMA(model, 0.9999, 2000), UltralyticsEMA(model, 0.9999, 2000)
    for _ in range(5):
        model(torch.randn(2, 3, 8, 8))
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.9).add_(0.1)
        ours.update(model)
        ref.update(model)
    for (k, a), b in zip(ours.module.state_dict().items(), ref.ema.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=0, atol=1e-7, msg=k)
