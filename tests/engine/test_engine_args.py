"""Train flags, --cfg YAML and key=value overrides: precedence, conversions and clear errors."""

import argparse

import pytest
import torch

from yololab.engine.args import add_train_args, config_from_args, parse_args
from yololab.errors import ConfigError

TASK_DEFAULTS = {"epochs": 50, "nbs": 64, "lr0": 0.02}


def parser():
    p = argparse.ArgumentParser(prog="yololab toy train")
    p.add_argument("--data", default="shapes.yaml", help="dataset")
    p.add_argument("--imgsz", type=int, default=640, help="image size (default %(default)s)")
    p.add_argument("--rect", action="store_true", help="rectangular batches")
    return add_train_args(p, TASK_DEFAULTS)


def cfg_of(*argv):
    args = parse_args(parser(), list(argv))
    return config_from_args(args), args


def test_defaults_are_the_tasks_then_the_engines():
    cfg, args = cfg_of()
    assert (cfg.epochs, cfg.nbs, cfg.lr0, cfg.batch, cfg.momentum) == (50, 64, 0.02, 16, 0.937)
    assert (args.data, args.imgsz, args.rect) == ("shapes.yaml", 640, False)


def test_flags_and_key_value_anywhere():
    cfg, args = cfg_of("--epochs", "3", "lr0=0.05", "--imgsz", "320", "cos_lr=True", "imgsz=320", "rect=true",
                       "weight-decay=0.001", "optimizer=sgd", "amp=False", "--no-ema", "device=cpu", "nbs=none")
    assert (cfg.epochs, cfg.lr0, cfg.scheduler, cfg.weight_decay, cfg.optimizer) == (3, 0.05, "cosine", 0.001, "SGD")
    assert (cfg.amp, cfg.ema, cfg.device, cfg.nbs) == ("off", False, "cpu", None)
    assert (args.imgsz, args.rect) == (320, True)
    assert cfg_of("val=False")[0].val_interval == 0


def test_yaml_then_command_line(tmp_path):
    f = tmp_path / "hyp.yaml"
    f.write_text("epochs: 7\nlr0: 0.003\nimgsz: 416\nbatch: 4\nwarmup_steps: null\n")
    cfg, args = cfg_of("--cfg", str(f), "--epochs", "9", "batch=2")
    assert (cfg.epochs, cfg.lr0, cfg.batch, cfg.warmup_steps, args.imgsz) == (9, 0.003, 2, None, 416)
    # an explicit flag equal to the default still beats the YAML
    assert cfg_of("--cfg", str(f), "--imgsz", "640")[1].imgsz == 640


@pytest.mark.parametrize("argv,message", [
    (["lr=0.1"], "unknown setting 'lr'; did you mean 'lr0' or 'lrf'?"),
    (["epochs=ten"], "epochs='ten': expected an integer"),
    (["epochs=2.5"], "epochs='2.5': expected an integer"),
    (["batch=0"], "batch=0: expected a positive integer"),
    (["epochs=-1"], "epochs=-1: expected a positive integer"),
    (["lr0=0"], "lr0=0.0: expected a number > 0"),
    (["optimizer=adamx"], "optimizer='adamx': expected one of SGD | Adam | AdamW | auto"),
    (["imgsz=big"], "imgsz='big': invalid literal for int()"),
    (["rect=maybe"], "rect='maybe': expected true or false"),
    (["epochs"], "'epochs': expected KEY=VALUE"),
    (["--epochs", "3", "epochs=4"], "epochs given twice"),
    (["--epcohs", "3"], "unknown option --epcohs; did you mean --epochs?"),
    (["device=tpu"], "device='tpu': expected cpu | cuda | N | N,M"),
    (["momentum=1.5"], "momentum=1.5: expected a number in [0, 1)"),
])
def test_bad_input_one_clear_error(argv, message):
    with pytest.raises(ConfigError) as err:
        cfg_of(*argv)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_yaml(tmp_path):
    f = tmp_path / "hyp.yaml"
    f.write_text("epohcs: 3\n")
    with pytest.raises(ConfigError, match=r"--cfg .*hyp.yaml: unknown setting 'epohcs'; did you mean 'epochs'"):
        cfg_of("--cfg", str(f))
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        cfg_of("--cfg", str(f))
    with pytest.raises(ConfigError, match="no such file"):
        cfg_of("--cfg", str(tmp_path / "missing.yaml"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "0", "0,1", "cuda:1"])
def test_cuda_without_cuda(device):
    with pytest.raises(ConfigError, match="CUDA was requested but this PyTorch sees no CUDA GPU"):
        cfg_of(f"device={device}")


def test_flag_type_errors_exit_through_argparse(capsys):
    with pytest.raises(SystemExit) as exit_:
        cfg_of("--epochs", "x")
    assert exit_.value.code == 2 and "argument --epochs: 'x': expected an integer" in capsys.readouterr().err


def test_help_lists_every_setting_with_its_default():
    text = parser().format_help()
    for part in ("--lr0 LR0", "(default: 0.02)", "--nbs NBS", "(default: 64)", "--ema, --no-ema",
                 "image size (default 640)", "KEY=VALUE", "--cfg FILE.yaml"):
        assert part in text


def test_yololab_main_rejects_extras_for_commands_without_train_settings(capsys):
    """The main CLI parses with parse_args; a command without add_train_args still refuses extras."""
    from yololab.cli import main

    assert main(["models", "list", "epochs=3"]) == 2
    assert "unrecognized arguments: epochs=3" in capsys.readouterr().err
