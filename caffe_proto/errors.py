"""The one exception type every reader of the project raises on bad input."""


class CaffeFormatError(ValueError):
    """A Caffe file (prototxt, caffemodel or HDF5 weights) that cannot be read.

    The message names the file, where in it (byte offset or line) and the
    field path (``layer[17].blobs[0].data``) when those are known.
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
        super().__init__(f"{': '.join([', '.join(where)] if where else [])}{': ' if where else ''}{message}")
