"""psp_torch/compat.py: a feature that needs a newer torch says so in one line where it is
asked for (export.py --onnx exits 1 with it, nothing written; compile_problem gives it), and
the version parsing behind it. The installed torch is stood in for by patching compat's
record of it, so this runs on any torch."""
from __future__ import annotations

import pytest

from psp_torch import compat


@pytest.fixture
def torch_2_1(monkeypatch):
    monkeypatch.setattr(compat, "VERSION", "2.1.2+cu121")
    monkeypatch.setattr(compat, "INSTALLED", compat.release("2.1.2+cu121"))


def test_release_parses_local_and_short_versions():
    assert compat.release("2.13.0+cpu") == (2, 13, 0)
    assert compat.release("2.6") == (2, 6, 0)
    assert compat.release("2.15.0.dev20260101") == (2, 15, 0)
    assert compat.release("2.10.0") > compat.release("2.9.1")      # numbers, not text


def test_installed_torch_is_recorded():
    import torch
    assert compat.VERSION == torch.__version__
    assert compat.INSTALLED == compat.release(torch.__version__)


def test_too_old_is_one_line_naming_both_versions(torch_2_1):
    for feature, need in compat.MINIMUM.items():
        text = compat.too_old(feature)
        major, minor = need[:2]
        assert text == (f"{feature} needs torch >= {major}.{minor}"
                        f"{'' if need[2] == 0 else f'.{need[2]}'} (installed 2.1.2+cu121)")
        with pytest.raises(compat.TorchTooOld, match=r"needs torch >= .* \(installed 2\.1\.2"):
            compat.require(feature)


def test_nothing_is_too_old_on_the_minimum_itself(monkeypatch):
    for feature, need in compat.MINIMUM.items():
        monkeypatch.setattr(compat, "INSTALLED", need)
        assert compat.too_old(feature) is None
        compat.require(feature)


def test_export_program_refuses_an_old_torch(torch_2_1):
    import variants
    from psp_torch.tracing import export_program
    with pytest.raises(compat.TorchTooOld, match="torch.export with dynamic sizes needs torch"):
        export_program(variants.calibrated_model())


def test_onnx_export_cli_on_an_old_torch_is_one_line_writing_nothing(torch_2_1, tmp_path,
                                                                     capsys):
    import variants
    from psp_torch.io import save_pspnet
    from pspnet_caffe.converter.export import main as export_main
    pth = save_pspnet(variants.calibrated_model(), tmp_path / "m.pth")
    out = tmp_path / "m.onnx"
    assert export_main([str(pth), "--onnx", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {out}: not written: the ONNX export needs torch >= "
                   f"{compat._text(compat.MINIMUM[compat.ONNX])} (installed 2.1.2+cu121)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth"]


def test_compile_problem_on_an_old_torch_names_the_version(torch_2_1):
    from psp_torch import compiled
    compiled._probe.cache_clear()
    try:
        assert compiled.compile_problem("cpu") == compat.too_old(compat.COMPILE)
        with pytest.raises(compiled.CompileUnavailable, match="needs torch >= "):
            import variants
            compiled.compile_model(variants.calibrated_model())
    finally:
        compiled._probe.cache_clear()
