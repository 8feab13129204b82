"""caffe.proto and its generated module: the committed caffe_pb2.py is what protoc makes of
the committed .proto, it imports on the installed runtime, and the two dialects number
their fields as the fork and upstream Caffe do."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _serialized_descriptor(module_source: str) -> bytes:
    """The bytes passed to AddSerializedFile in a generated *_pb2.py."""
    for node in ast.walk(ast.parse(module_source)):
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile"):
            return ast.literal_eval(node.args[0])
    raise AssertionError("no AddSerializedFile call in the generated module")


def test_generated_module_matches_the_proto(tmp_path):
    pytest.importorskip("grpc_tools")
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={ROOT}",
         f"--python_out={tmp_path}", "caffe_proto/caffe.proto"],
        capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    fresh = (tmp_path / "caffe_proto" / "caffe_pb2.py").read_text()
    committed = (ROOT / "caffe_proto" / "caffe_pb2.py").read_text()
    assert _serialized_descriptor(fresh) == _serialized_descriptor(committed), \
        "caffe_pb2.py is stale: regenerate it with grpc_tools.protoc from caffe_proto/caffe.proto"


def test_generated_module_imports_on_this_runtime():
    from caffe_proto import caffe_pb2
    from google.protobuf import descriptor_pb2

    fd = descriptor_pb2.FileDescriptorProto.FromString(caffe_pb2.DESCRIPTOR.serialized_pb)
    assert fd.package == "caffe"
    assert caffe_pb2.PSPNetParameter().SerializeToString() == b""


def _number(message, field):
    return message.DESCRIPTOR.fields_by_name[field].number


def test_dialects_number_fields_like_their_caffe():
    from caffe_proto import caffe_pb2 as pb

    assert _number(pb.PSPLayerParameter, "interp_param") == 143
    assert _number(pb.PSPLayerParameter, "bn_param") == 152
    assert _number(pb.LayerParameter, "input_param") == 143
    assert _number(pb.LayerParameter, "crop_param") == 144
    assert _number(pb.LayerParameter, "batch_norm_param") == 139
    assert _number(pb.PSPLayerParameter, "batch_norm_param") == 139
    assert _number(pb.NetParameter, "layer") == 100
    assert _number(pb.NetParameter, "layers") == 2
    assert [_number(pb.InterpParameter, f) for f in
            ("height", "width", "zoom_factor", "shrink_factor", "pad_beg", "pad_end")] == [1, 2, 3, 4, 5, 6]
    assert pb.BNParameter().eps == pytest.approx(1e-5)
    assert _number(pb.BlobProto, "double_data") == 8 and _number(pb.BlobProto, "shape") == 7


def test_printable_escapes_what_a_terminal_would_obey():
    from caffe_proto.printable import printable
    assert printable("conv5_3_pool1") == "conv5_3_pool1"
    assert printable("déjà 街") == "déjà 街"
    shown = printable("a\x1b[2Jb\nerror: forged\u202e")
    assert "\x1b" not in shown and "\n" not in shown and "\u202e" not in shown
    assert shown == "a\\x1b[2Jb\\nerror: forged\\u202e"
    assert printable("x" * 500) == "x" * 200 + "... (300 more characters)"
