"""The three released deploy prototxts build as CaffeNet without weights.

Built on the meta device (no memory, no arithmetic): shape inference at build
time and a meta forward must both give the released output shapes.
"""
import pytest
import torch

from psp_torch import CaffeNet
from psp_torch.layers import LayerError

from conftest import DATA


def resnet_psp_parameters(blocks, classes):
    """Learnable values of the released PSPNets, counted from the architecture:
    three-conv stem, bottlenecks (1x1, 3x3, 1x1, projection in each stage's first
    block; convs without bias, BN slope + bias), pyramid 1x1 convs, conv5_4, conv6."""
    def bottleneck(cin, mid, cout, proj):
        return (cin * mid + 2 * mid + 9 * mid * mid + 2 * mid + mid * cout + 2 * cout
                + (cin * cout + 2 * cout if proj else 0))

    def stage(n, cin, mid, cout):
        return bottleneck(cin, mid, cout, True) + (n - 1) * bottleneck(cout, mid, cout, False)

    stem = 3 * 64 * 9 + 128 + 64 * 64 * 9 + 128 + 64 * 128 * 9 + 256
    body = (stage(blocks[0], 128, 64, 256) + stage(blocks[1], 256, 128, 512)
            + stage(blocks[2], 512, 256, 1024) + stage(blocks[3], 1024, 512, 2048))
    head = 4 * (2048 * 512 + 1024) + 4096 * 512 * 9 + 1024 + 512 * classes + classes
    return stem + body + head


RELEASED = {   # input, output, learnable parameter count
    "pspnet50_ADE20K_473.prototxt":
        ((1, 3, 473, 473), (1, 150, 473, 473), resnet_psp_parameters((3, 4, 6, 3), 150)),
    "pspnet101_VOC2012_473.prototxt":
        ((1, 3, 473, 473), (1, 21, 473, 473), resnet_psp_parameters((3, 4, 23, 3), 21)),
    "pspnet101_cityscapes_713.prototxt":
        ((1, 3, 713, 713), (1, 19, 713, 713), resnet_psp_parameters((3, 4, 23, 3), 19)),
}


def test_parameter_formula_matches_the_known_pspnet101_count():
    assert resnet_psp_parameters((3, 4, 23, 3), 21) == 65_708_501


@pytest.mark.parametrize("name", list(RELEASED))
def test_released_prototxt_builds_with_its_output_shape(name):
    in_shape, out_shape, n_params = RELEASED[name]
    with torch.device("meta"):
        cnet = CaffeNet.from_files(DATA / "prototxt" / name)
        assert cnet.input_shapes == {"data": in_shape}
        assert cnet.output_names == ["conv6_interp"]
        assert cnet.blob_shapes["conv6_interp"] == out_shape
        assert cnet.blob_shapes["conv5_3_concat"][2:] == tuple(s // 8 + 1 for s in in_shape[2:])
        out = cnet(torch.empty(in_shape))
    assert tuple(out.shape) == out_shape
    assert sum(p.numel() for p in cnet.parameters()) == n_params


def test_fixed_pyramid_interp_rejects_other_sizes_as_caffe_does():
    """The pyramid's Interp layers have a fixed 60x60 size: at 300x400 conv5_3 is
    38x51 and the Concat of conv5_3 with the pooled branches fails, as in Caffe."""
    with torch.device("meta"):
        cnet = CaffeNet.from_files(DATA / "prototxt" / "pspnet50_ADE20K_473.prototxt")
        shapes = cnet.infer_shapes(data=(2, 3, 473, 473))
        assert shapes["conv6_interp"] == (2, 150, 473, 473)
        with pytest.raises(LayerError, match="conv5_3_concat"):
            cnet.infer_shapes(data=(1, 3, 300, 400))
        with pytest.raises(LayerError, match="conv5_3_concat"):
            cnet(torch.empty(1, 3, 300, 400))
