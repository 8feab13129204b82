"""BlobProto -> numpy float32 array with its Caffe shape."""
from __future__ import annotations

import numpy as np

from .errors import CaffeFormatError


def blob_shape(blob) -> tuple[int, ...]:
    """Caffe's rule: `shape` when present, else the legacy 4-D num/channels/height/width."""
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    if any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        return (blob.num, blob.channels, blob.height, blob.width)
    n = len(blob.data) or len(blob.double_data)
    return (n,) if n else (0,)


def blob_to_array(blob, source="<memory>", field="blob") -> np.ndarray:
    """Values from `data` (float) or `double_data`, as float32 in the blob's shape."""
    shape = blob_shape(blob)
    if len(blob.data):
        values = np.asarray(blob.data, dtype=np.float32)
    else:
        values = np.asarray(blob.double_data, dtype=np.float64).astype(np.float32)
    count = int(np.prod(shape, dtype=np.int64))
    if values.size != count:
        raise CaffeFormatError(f"shape {shape} needs {count} values, found {values.size}",
                               path=source, field=field)
    return values.reshape(shape)
