"""The one exception type every reader of the project raises on bad input."""
from .printable import printable

# characters of a message shown: a message quotes names and text from the file
MESSAGE_LIMIT = 2000


class CaffeFormatError(ValueError):
    """A Caffe file (prototxt, caffemodel or HDF5 weights) that cannot be read.

    The message names the file, where in it (byte offset or line) and the
    field path (``layer[17].blobs[0].data``) when those are known. The message is made safe
    to print (`printable`): whatever of the file it quotes cannot reach a terminal raw.
    """

    def __init__(self, message, *, path=None, offset=None, line=None, field=None):
        self.reason = message
        self.path = None if path is None else str(path)
        self.offset = offset
        self.line = line
        self.field = field
        where = []
        if self.path:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if offset is not None:
            where.append(f"byte {offset}")
        if field:
            where.append(field)
        super().__init__(printable(
            f"{': '.join([', '.join(where)] if where else [])}{': ' if where else ''}{message}",
            MESSAGE_LIMIT))
