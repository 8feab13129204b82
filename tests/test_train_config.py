"""train/config.py: the frozen config resolved once from the arguments, and the resume identity
derived from it (every field unless exempted with a reason), so that a new option cannot be
left out of the check that refuses a resume with other settings."""
import copy
import dataclasses

import pytest

from pspnet_caffe.train import checkpoint as ck
from pspnet_caffe.train import run as train_run
from psp_torch import cli
from psp_torch.config import PSPNetConfig, option, option_defaults, options
from psp_torch.identity import EXEMPT, IDENTITY, exempt
from pspnet_caffe.train.config import TrainConfig, from_args, identity

ARGV = ["--data-root", "data", "--list", "data/train.txt", "--num-classes", "3", "--init",
        "x.pth", "--iters", "10", "--out", "out"]


def _config(*extra):
    return from_args(train_run.parse_args(ARGV + list(extra)))


def test_defaults_resolved_once_without_touching_the_arguments():
    args = train_run.parse_args(ARGV)
    before = copy.deepcopy(vars(args))
    c = from_args(args)
    assert vars(args) == before                    # the Namespace is read, never rewritten
    assert (c.batch_size, c.lr, c.momentum, c.weight_decay, c.aux_weight) == \
        (16, 0.01, 0.9, 1e-4, 0.4)                 # the paper's recipe (psp_torch.datasets)
    assert c.network == {}                         # --init: the model file's own network
    assert c.crop_size is None and c.with_crop(97).crop_size == 97   # --init: the model's own
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lr = 0.02
    voc = from_args(train_run.parse_args(["--data-root", "d", "--dataset", "voc", "--arch",
                                          "pspnet50", "--out", "o"]))
    assert (voc.num_classes, voc.crop_size, voc.iters) == (21, 473, 30_000)
    assert voc.network == {"bins": (1, 2, 3, 6), "pool": "ave", "reduction": True,
                           "dropout": 0.1}        # --arch: the release's unless given


def test_identity_is_every_field_but_the_exempt_ones():
    c = _config()
    ident = identity(c)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    exempted = {f.name for f in dataclasses.fields(TrainConfig)
                if IDENTITY in f.metadata.get(EXEMPT, {})}
    assert set(ident) == names - exempted - {"network"}   # --init: no network option given
    assert {"out", "resume", "stop_after", "save_every", "workers", "device"} <= exempted
    assert {"lr", "iters", "seed", "augment", "amp", "init", "crop_size"} <= set(ident)
    assert all(f.metadata[EXEMPT][IDENTITY] for f in dataclasses.fields(TrainConfig)
               if f.name in exempted)                    # each exemption says why
    assert ident["init"].endswith("x.pth") and ident["init"].startswith("/")  # absolute path
    # exempt settings change nothing in the identity; the others do
    assert identity(_config("--out", "elsewhere", "--stop-after", "3", "--workers", "0")) == ident
    assert identity(_config("--lr", "0.02"))["lr"] == 0.02
    assert identity(_config("--dropout", "0.2"))["dropout"] == 0.2   # a network option, by name


def test_a_new_field_is_in_the_identity_and_a_resume_with_another_value_is_refused():
    """Someone adds an option and forgets the resume check: it is checked all the same."""
    Extended = dataclasses.make_dataclass(
        "Extended", [("label_smoothing", float, dataclasses.field(default=0.0)),
                     ("log_every", int, exempt("a logging cadence"))],
        bases=(TrainConfig,), frozen=True, kw_only=True)
    base = dataclasses.asdict(_config())
    old = Extended(**base, label_smoothing=0.0, log_every=1)
    new = Extended(**base, label_smoothing=0.1, log_every=50)
    assert "label_smoothing" in identity(old) and "log_every" not in identity(old)
    saved = {"recipe": identity(old), "init_hash": "h" * 64}
    ck.check_same_run("ckpt.pth", saved, identity(Extended(**base, label_smoothing=0.0,
                                                           log_every=50)), "h" * 64)
    with pytest.raises(ck.ResumeError, match=r"--label-smoothing 0\.0 -> 0\.1"):
        ck.check_same_run("ckpt.pth", saved, identity(new), "h" * 64)


def test_a_new_network_option_is_a_flag_with_no_other_edit():
    """A field declared with `option` in PSPNetConfig is a train/run.py flag (type, choices,
    help and default from the field), applied with one dataclasses.replace."""
    Extended = dataclasses.make_dataclass(
        "Extended", [("aux_stage", int, option(4, "stage the aux head reads", choices=(3, 4))),
                     ("deep_head", bool, option(False, "a deeper head"))],
        bases=(PSPNetConfig,), frozen=True)
    p = cli.parser("x", None)
    cli.add_options(p, options(Extended), option_defaults(Extended), only="(with --arch)")
    text = p.format_help()
    assert "--aux-stage {3,4}" in text and "stage the aux head reads (with --arch) (default: 4)" \
        in " ".join(text.split())
    assert "--deep-head" in text and "--no-reduction" in text and "--bins BINS" in text
    given = cli.given_options(p.parse_args(["--aux-stage", "3", "--deep-head", "--no-reduction",
                                            "--bins", "1,2"]), options(Extended))
    assert given == {"aux_stage": 3, "deep_head": True, "reduction": False, "bins": (1, 2)}
    c = dataclasses.replace(Extended(num_classes=2), **given)
    assert (c.aux_stage, c.deep_head, c.reduction, c.bins, c.pool) == (3, True, False, (1, 2), "ave")
    assert cli.given_options(p.parse_args([]), options(Extended)) == {}
    with pytest.raises(SystemExit):
        p.parse_args(["--aux-stage", "5"])             # choices from the field: usage error


def test_network_options_are_checked_by_the_config_as_usage_errors(capsys):
    argv = ["--data-root", "d", "--dataset", "voc", "--arch", "pspnet50", "--out", "o"]
    for extra, message in [(["--bins", "1,1"], "bins [1, 1]"), (["--bins", "0"], "bins [0]"),
                           (["--dropout", "1"], "dropout 1.0"),
                           (["--pool", "min"], "invalid choice: 'min'")]:
        with pytest.raises(SystemExit) as e:
            train_run.parse_args(argv + extra)
        assert e.value.code == 2 and message in capsys.readouterr().err
