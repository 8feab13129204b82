"""A PSPNet config -> the deploy net in the release's own layout (a `caffe_proto.Net`).

The generated layers carry exactly the fields the authors' deploy prototxts carry
(``param`` lr/decay multipliers, msra fillers, explicit ``pad: 0`` on the
backbone 1x1 convs and none on the pyramid convs, BN fillers, momentum 0.95,
frozen), so that for the three released configurations the parsed result equals
the parsed released prototxt (tests/test_export.py). Used by the exporter, by
the converter when a caffemodel comes without a prototxt, and by ``--verify``.

The paper's variants (`PSPNetConfig.bins` / ``pool`` / ``reduction``, any depth) are
written the same way: MAX pooling layers for ``pool="max"``, no ``conv5_3_pool*_conv``
without dimension reduction (pool -> Interp -> Concat), and no pyramid nor concat for
``bins=()`` (conv5_4 on conv5_3). Caffe expresses all of them.

The auxiliary head of the training net (conv4_24 3x3 pad 1 + BN + ReLU + dropout,
conv6_1 1x1 with bias) can be appended for weight files; its training-time
parameters are not published, so those layers carry the backbone's settings.
"""
from __future__ import annotations

from caffe_proto import PSPNET, Layer, Net
from caffe_proto import caffe_pb2

from .config import AUX_CLASSIFIER, AUX_LAYER, STEM_LAYERS, PSPNetConfig, match_preset

# The ADE20K file gives conv5_4/bn's (zero-lr) mean blob decay_mult 1; the others 0.
_BN_PARAM_QUIRKS = {("pspnet50_ade20k", "conv5_4/bn"): ((10, 0), (10, 0), (0, 1), (0, 0))}


class _Builder:
    def __init__(self, preset_name: str | None, bn_eps: float):
        self.layers: list[Layer] = []
        self.preset_name = preset_name
        self.bn_eps = bn_eps

    def _add(self, name, type_, bottom, top, fill=None):
        p = caffe_pb2.PSPLayerParameter()
        p.name, p.type = name, type_
        p.bottom.extend(bottom)
        p.top.extend(top)
        if fill:
            fill(p)
        self.layers.append(Layer(name, type_, list(bottom), list(top), p, []))
        return p

    @staticmethod
    def _params(p, mults):
        for lr, decay in mults:
            spec = p.param.add()
            spec.lr_mult, spec.decay_mult = lr, decay

    def conv(self, name, bottom, num_output, kernel, *, stride=1, pad=0, dilation=1,
             lr=1, pad_field=True, bias=False, top=None):
        def fill(p):
            self._params(p, [(lr, 1)] + ([(2 * lr, 1)] if bias else []))
            cp = p.convolution_param
            cp.num_output = num_output
            if not bias:
                cp.bias_term = False
            if pad_field:
                cp.pad.append(pad)
            cp.kernel_size.append(kernel)
            cp.stride.append(stride)
            cp.weight_filler.type = "msra"
            if dilation != 1:
                cp.dilation.append(dilation)
        self._add(name, "Convolution", [bottom], [top or name], fill)
        return top or name

    def bn(self, blob, lr=1):
        name = f"{blob}/bn"
        mults = _BN_PARAM_QUIRKS.get((self.preset_name, name),
                                     ((lr, 0), (lr, 0), (0, 0), (0, 0)))

        def fill(p):
            self._params(p, mults)
            bp = p.bn_param
            bp.slope_filler.type, bp.slope_filler.value = "constant", 1
            bp.bias_filler.type, bp.bias_filler.value = "constant", 0
            if self.bn_eps != 1e-5:
                bp.eps = self.bn_eps
            bp.frozen = True
            bp.momentum = 0.95
        self._add(name, "BN", [blob], [blob], fill)

    def relu(self, blob):
        self._add(f"{blob}/relu", "ReLU", [blob], [blob])

    def conv_bn_relu(self, name, bottom, num_output, kernel, relu=True, **kw):
        top = self.conv(name, bottom, num_output, kernel, **kw)
        self.bn(top, lr=kw.get("lr", 1))
        if relu:
            self.relu(top)
        return top

    def pool(self, name, bottom, method, kernel, stride, pad=None):
        def fill(p):
            pp = p.pooling_param
            pp.pool = getattr(caffe_pb2.PoolingParameter, method)
            pp.kernel_size, pp.stride = kernel, stride
            if pad is not None:
                pp.pad = pad
        self._add(name, "Pooling", [bottom], [name], fill)
        return name

    def interp(self, name, bottom, *, size=None, zoom=None):
        def fill(p):
            ip = p.interp_param
            if zoom is not None:
                ip.zoom_factor = zoom
            else:
                ip.height, ip.width = size, size
        self._add(name, "Interp", [bottom], [name], fill)
        return name


def deploy_net(config: PSPNetConfig, model_name: str | None = None, *,
               aux: bool = False) -> Net:
    """The deploy net (input ``data`` 1x3xCxC) of `config`; with ``aux`` the aux head appended.

    The released file the config is an instance of (`match_preset`, slim widths
    included) decides its few cosmetic ``param`` quirks; `model_name` only labels the net.
    """
    c = config
    preset = match_preset(c)
    b = _Builder(preset.name if preset else None, c.bn_eps)
    x = "data"
    widths = c.stem_widths
    for i, (name, w) in enumerate(zip(STEM_LAYERS, widths)):
        x = b.conv_bn_relu(name, x, w, 3, stride=2 if i == 0 else 1, pad=1)
    x = b.pool("pool1_3x3_s2", x, "MAX", 3, 2, pad=1)
    for s, n in zip((2, 3, 4, 5), c.blocks):
        k = s - 2
        mid, out, dil = c.mid_widths[k], c.out_widths[k], c.dilations[k]
        for i in range(1, n + 1):
            stride = 2 if (s == 3 and i == 1) else 1
            rs = stride if c.stride_on_reduce else 1
            pre = f"conv{s}_{i}"
            y = b.conv_bn_relu(f"{pre}_1x1_reduce", x, mid, 1, stride=rs)
            y = b.conv_bn_relu(f"{pre}_3x3", y, mid, 3, stride=stride // rs, pad=dil,
                               dilation=dil)
            y = b.conv_bn_relu(f"{pre}_1x1_increase", y, out, 1, relu=False)
            shortcut = x
            if i == 1:
                shortcut = b.conv_bn_relu(f"{pre}_1x1_proj", x, out, 1, stride=stride,
                                          relu=False)

            def eltwise(p):
                p.eltwise_param.operation = caffe_pb2.EltwiseParameter.SUM
            b._add(pre, "Eltwise", [shortcut, y], [pre], eltwise)
            b.relu(pre)
            x = pre
        if s == 4:
            stage4 = x
    feat = c.feature_size
    pooled = []
    for bin_, kernel in zip(c.bins, c.pool_kernels):
        p = b.pool(f"conv5_3_pool{bin_}", x, c.pool.upper(), kernel, kernel)
        if c.reduction:
            p = b.conv_bn_relu(f"conv5_3_pool{bin_}_conv", p, c.ppm_width, 1, lr=10,
                               pad_field=False)
        pooled.append(b.interp(f"conv5_3_pool{bin_}_interp", p, size=feat))
    if pooled:
        b._add("conv5_3_concat", "Concat", [x] + pooled[::-1], ["conv5_3_concat"])
        x = "conv5_3_concat"
    y = b.conv_bn_relu("conv5_4", x, c.head_width, 3, pad=1, lr=10)

    def dropout(p):
        p.dropout_param.dropout_ratio = c.dropout
    b._add("conv5_4/dropout", "Dropout", [y], [y], dropout)
    b.conv("conv6", y, c.num_classes, 1, lr=10, pad_field=False, bias=True)
    b.interp("conv6_interp", "conv6", zoom=8)
    if aux:
        a = b.conv_bn_relu(AUX_LAYER, stage4, c.aux_width, 3, pad=1, lr=10)
        b._add(f"{AUX_LAYER}/dropout", "Dropout", [a], [a], dropout)
        b.conv(AUX_CLASSIFIER, a, c.num_classes, 1, lr=10, pad_field=False, bias=True)
    return Net("", PSPNET, {"data": (1, 3, c.crop_size, c.crop_size)}, b.layers,
               source=f"<deploy of {model_name or 'PSPNet'}>")
