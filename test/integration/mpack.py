"""A small msgpack encoder/decoder (stdlib only) so tests can speak orch's wire format:
frames of a 4-byte big-endian length followed by one msgpack map."""
import struct


class DecodeError(Exception):
    pass


def packb(obj):
    out = bytearray()
    _pack(obj, out)
    return bytes(out)


def _pack(o, out):
    if o is None:
        out.append(0xC0)
    elif o is True:
        out.append(0xC3)
    elif o is False:
        out.append(0xC2)
    elif isinstance(o, int):
        _pack_int(o, out)
    elif isinstance(o, float):
        out.append(0xCB)
        out += struct.pack(">d", o)
    elif isinstance(o, str):
        b = o.encode()
        n = len(b)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 256:
            out += bytes([0xD9, n])
        elif n < 65536:
            out += b"\xda" + struct.pack(">H", n)
        else:
            out += b"\xdb" + struct.pack(">I", n)
        out += b
    elif isinstance(o, (bytes, bytearray)):
        n = len(o)
        if n < 256:
            out += bytes([0xC4, n])
        elif n < 65536:
            out += b"\xc5" + struct.pack(">H", n)
        else:
            out += b"\xc6" + struct.pack(">I", n)
        out += o
    elif isinstance(o, (list, tuple)):
        n = len(o)
        if n < 16:
            out.append(0x90 | n)
        elif n < 65536:
            out += b"\xdc" + struct.pack(">H", n)
        else:
            out += b"\xdd" + struct.pack(">I", n)
        for x in o:
            _pack(x, out)
    elif isinstance(o, dict):
        n = len(o)
        if n < 16:
            out.append(0x80 | n)
        elif n < 65536:
            out += b"\xde" + struct.pack(">H", n)
        else:
            out += b"\xdf" + struct.pack(">I", n)
        for k, v in o.items():
            _pack(k, out)
            _pack(v, out)
    else:
        raise TypeError("cannot msgpack %r" % type(o))


def _pack_int(o, out):
    if 0 <= o < 128:
        out.append(o)
    elif -32 <= o < 0:
        out.append(o & 0xFF)
    elif o >= 0:
        if o < 1 << 8:
            out += bytes([0xCC, o])
        elif o < 1 << 16:
            out += b"\xcd" + struct.pack(">H", o)
        elif o < 1 << 32:
            out += b"\xce" + struct.pack(">I", o)
        else:
            out += b"\xcf" + struct.pack(">Q", o)
    else:
        if o >= -(1 << 7):
            out += b"\xd0" + struct.pack(">b", o)
        elif o >= -(1 << 15):
            out += b"\xd1" + struct.pack(">h", o)
        elif o >= -(1 << 31):
            out += b"\xd2" + struct.pack(">i", o)
        else:
            out += b"\xd3" + struct.pack(">q", o)


def unpackb(data):
    obj, pos = _unpack(data, 0, 0)
    if pos != len(data):
        raise DecodeError("%d trailing bytes" % (len(data) - pos))
    return obj


def _need(data, pos, n):
    if pos + n > len(data):
        raise DecodeError("truncated at %d" % pos)


_FIXED = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q",
          0xCA: ">f", 0xCB: ">d"}


def _unpack(data, pos, depth):
    if depth > 64:
        raise DecodeError("nested too deeply")
    _need(data, pos, 1)
    b = data[pos]
    pos += 1
    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 256, pos
    if 0xA0 <= b <= 0xBF:
        return _str(data, pos, b & 0x1F)
    if 0x90 <= b <= 0x9F:
        return _arr(data, pos, b & 0x0F, depth)
    if 0x80 <= b <= 0x8F:
        return _map(data, pos, b & 0x0F, depth)
    if b == 0xC0:
        return None, pos
    if b == 0xC2:
        return False, pos
    if b == 0xC3:
        return True, pos
    if b in _FIXED:
        fmt = _FIXED[b]
        n = struct.calcsize(fmt)
        _need(data, pos, n)
        return struct.unpack_from(fmt, data, pos)[0], pos + n
    lens = {0xD9: (">B", "s"), 0xDA: (">H", "s"), 0xDB: (">I", "s"), 0xC4: (">B", "b"), 0xC5: (">H", "b"),
            0xC6: (">I", "b"), 0xDC: (">H", "a"), 0xDD: (">I", "a"), 0xDE: (">H", "m"), 0xDF: (">I", "m")}
    if b in lens:
        fmt, kind = lens[b]
        n = struct.calcsize(fmt)
        _need(data, pos, n)
        ln = struct.unpack_from(fmt, data, pos)[0]
        pos += n
        if kind == "s":
            return _str(data, pos, ln)
        if kind == "b":
            _need(data, pos, ln)
            return bytes(data[pos:pos + ln]), pos + ln
        if kind == "a":
            return _arr(data, pos, ln, depth)
        return _map(data, pos, ln, depth)
    raise DecodeError("unsupported msgpack byte 0x%02x" % b)


def _str(data, pos, n):
    _need(data, pos, n)
    return bytes(data[pos:pos + n]).decode("utf-8", "replace"), pos + n


def _arr(data, pos, n, depth):
    out = []
    for _ in range(n):
        x, pos = _unpack(data, pos, depth + 1)
        out.append(x)
    return out, pos


def _map(data, pos, n, depth):
    out = {}
    for _ in range(n):
        k, pos = _unpack(data, pos, depth + 1)
        v, pos = _unpack(data, pos, depth + 1)
        out[k if not isinstance(k, list) else tuple(k)] = v
    return out, pos


def frame(payload):
    return struct.pack(">I", len(payload)) + payload
