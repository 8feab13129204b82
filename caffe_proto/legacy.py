"""Legacy net encodings turned into the V2 form: V1 ``layers`` and ``input_dim``."""
from __future__ import annotations

from . import caffe_pb2
from .limits import DEFAULT, Limits, shape_count
from .printable import printable

# V1LayerParameter.LayerType -> the V2 type string Caffe's upgrade_proto gives it.
V1_TYPE_NAMES = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax",
    "BNLL": "BNLL", "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution", "DATA": "Data", "DECONVOLUTION": "Deconvolution",
    "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct", "LRN": "LRN", "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split",
    "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

# Parameter fields a V1 layer can carry that the V2 layer messages also have.
_SHARED_PARAMS = [f.name for f in caffe_pb2.V1LayerParameter.DESCRIPTOR.fields
                  if f.name.endswith("_param")]


def v1_type_name(v1_layer) -> str:
    enum_name = caffe_pb2.V1LayerParameter.LayerType.Name(v1_layer.type) \
        if v1_layer.type in caffe_pb2.V1LayerParameter.LayerType.values() else None
    if enum_name is None:
        return f"V1Type{v1_layer.type}"
    return V1_TYPE_NAMES[enum_name]


def upgrade_v1_layer(v1_layer, layer_cls):
    """A V1LayerParameter (blobs left out) as a V2 layer message of `layer_cls`."""
    layer = layer_cls()
    layer.name = v1_layer.name
    layer.type = v1_type_name(v1_layer)
    layer.bottom.extend(v1_layer.bottom)
    layer.top.extend(v1_layer.top)
    layer.loss_weight.extend(v1_layer.loss_weight)
    layer.include.extend(v1_layer.include)
    layer.exclude.extend(v1_layer.exclude)
    for name in _SHARED_PARAMS:
        if v1_layer.HasField(name):
            getattr(layer, name).CopyFrom(getattr(v1_layer, name))
    return layer


def _checked(shape, limits, source, field):
    """An input shape from a file: non-negative dims, within the values budget."""
    from .errors import CaffeFormatError

    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise CaffeFormatError(f"input shape {shape} has a negative dimension", path=source,
                               field=field)
    problem = limits.values_problem(shape_count(shape), f"input shape {shape} declares")
    if problem:
        raise CaffeFormatError(problem, path=source, field=field)
    return shape


def declared_inputs(net_msg, source="<memory>", limits: Limits = DEFAULT):
    """The net-level inputs: ``input`` with ``input_shape`` or 4 ``input_dim`` each."""
    from .errors import CaffeFormatError

    names = list(net_msg.input)
    shapes = {}
    if net_msg.input_shape:
        if len(net_msg.input_shape) != len(names):
            raise CaffeFormatError(
                f"{len(names)} inputs but {len(net_msg.input_shape)} input_shape entries",
                path=source, field="input_shape")
        for i, (name, shape) in enumerate(zip(names, net_msg.input_shape)):
            shapes[name] = _checked(shape.dim, limits, source, f"input_shape[{i}]")
    elif net_msg.input_dim:
        dims = list(net_msg.input_dim)
        if len(dims) != 4 * len(names):
            raise CaffeFormatError(
                f"{len(names)} inputs need {4 * len(names)} input_dim values, found {len(dims)}",
                path=source, field="input_dim")
        for i, name in enumerate(names):
            shapes[name] = _checked(dims[4 * i:4 * i + 4], limits, source, "input_dim")
    else:
        shapes = {name: () for name in names}
    return shapes


def add_input_layers(inputs: dict, layers, source="<memory>", limits: Limits = DEFAULT) -> None:
    """Add the tops of ``Input`` layers to `inputs`, with their input_param shapes.

    One shape serves all tops when only one is given (Caffe's InputLayer rule);
    () when the layer declares none (or is read in the fork's dialect, where
    field 143 is interp_param).
    """
    for layer in layers:
        if layer.type != "Input":
            continue
        has = layer.param.DESCRIPTOR.fields_by_name.get("input_param") is not None
        shapes = list(layer.param.input_param.shape) if has else []
        for j, top in enumerate(layer.top):
            shape = shapes[j] if j < len(shapes) else (shapes[0] if len(shapes) == 1 else None)
            inputs[top] = (_checked(shape.dim, limits, source,
                                    f"layer {printable(layer.name)}: input_param.shape")
                           if shape is not None else ())
