# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled RFC 6455 frame reader and the common cases of ``WebSocketStream.frame``.

The Python modules ``protocol/frames`` and ``protocol/messages`` are the reference: every
rule and every anomaly lives there. This module repeats two hot loops on the same state
objects and hands everything else back to them, so the session model is the same with or
without it (tests/test_fastws.py, tests/test_accel_equivalence.py):

- ``FrameReader``: the same records (``RawFrame``), offsets, packets, ``lost``, gap and
  skip behaviour as ``frames.FrameReader``, with the same methods.
- ``WsFlow``: what ``FlowParser`` becomes once the flow is WebSocket. ``data`` feeds a
  direction's bytes to its reader and handles, for each frame, the common cases of
  ``WebSocketStream.frame`` in C: a header that needs no check, and either a whole text or
  binary message in one frame (preview, UTF-8 check of text), a whole permessage-deflate
  message in one frame (inflated with the side's ``Inflater`` zlib object), or a ping or
  pong. Any other frame (a header that ``_check_header`` must see, fragments, closes,
  invalid UTF-8 in an uncompressed message, a record limit reached, a payload lost to a gap
  or a limit) is built as a ``RawFrame`` and given to the Python ``frame``.

The frame/message counters of the ``WebSocketStream`` (and each side's ``closed``/``open``)
are kept here while the fast path runs and written back (``push``) before any Python code
that reads them, then read again (``pull``); ``FlowParser`` calls ``push`` before it reads
the stream's results. A single compressed message repeats ``Inflater.start``/``feed`` on
the inflater's own fields (``_d``, ``takeover``, ``broken``, ``wbits``): a change there
must be made here too. Records are built as ``tuple.__new__(cls, items)`` builds them, and
left untracked by the cycle collector when they hold no container (they never can be part
of a cycle).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append, PyList_GET_SIZE
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

import codecs
import zlib

from analyzer.protocol.deflate import InflateError
from analyzer.protocol.frames import GAP, SKIPPED, RawFrame
from analyzer.session.build import CloseSeen
from analyzer.session.model import Frame, Location, Message

cdef extern from *:
    """
    #include <string.h>
    #include <stdint.h>

    /* A tuple subclass (NamedTuple) instance from a C array, as tuple.__new__(cls, items)
       makes it; the items are borrowed. When no item can hold a reference cycle (ints,
       strings, floats, bytes, None: every record here), the record is left untracked by
       the cycle collector, as the collector itself does for plain tuples (which it can
       only do for exact tuples, not for these NamedTuple records). */
    static PyObject* ws_pack(PyObject* cls, Py_ssize_t n, PyObject** items) {
        PyObject* out;
        Py_ssize_t i;
        int atomic = 1;
    #if PY_VERSION_HEX < 0x030E0000
        /* tuple_subtype_new's own steps (3.14 adds a cached hash to the tuple struct) */
        out = ((PyTypeObject*)cls)->tp_alloc((PyTypeObject*)cls, n);
        if (out == NULL) return NULL;
        for (i = 0; i < n; i++) {
            Py_INCREF(items[i]);
            PyTuple_SET_ITEM(out, i, items[i]);
        }
    #else
        PyObject* t = PyTuple_New(n);
        PyObject* args;
        if (t == NULL) return NULL;
        for (i = 0; i < n; i++) {
            Py_INCREF(items[i]);
            PyTuple_SET_ITEM(t, i, items[i]);
        }
        args = PyTuple_Pack(1, t);
        Py_DECREF(t);
        if (args == NULL) return NULL;
        out = PyTuple_Type.tp_new((PyTypeObject*)cls, args, NULL);
        Py_DECREF(args);
        if (out == NULL) return NULL;
    #endif
        for (i = 0; i < n; i++) {
            PyObject* o = items[i];
            if (PyType_IS_GC(Py_TYPE(o))) {  /* conservative: any container type */
                atomic = 0;
                break;
            }
        }
        if (atomic && PyObject_GC_IsTracked(out)) PyObject_GC_UnTrack(out);
        return out;
    }

    /* XOR with the 4-byte key (RFC 6455 5.3), the key's phase starting at 0. */
    static void ws_unmask(unsigned char* dst, const unsigned char* src, Py_ssize_t n,
                          const unsigned char* mask) {
        uint32_t m;
        uint64_t m8, w;
        Py_ssize_t i = 0;
        memcpy(&m, mask, 4);
        m8 = ((uint64_t)m << 32) | (uint64_t)m;
        for (; i + 8 <= n; i += 8) {
            memcpy(&w, src + i, 8);
            w ^= m8;
            memcpy(dst + i, &w, 8);
        }
        for (; i < n; i++) dst[i] = src[i] ^ mask[i & 3];
    }

    /* 1 when s[0:n] is well-formed UTF-8 as Python's strict decoder takes it (Unicode
       table 3-7: no overlongs, no surrogates, nothing above U+10FFFF), else 0. */
    static int ws_utf8_ok(const unsigned char* s, Py_ssize_t n) {
        Py_ssize_t i = 0;
        uint64_t w;
        unsigned char c, c1;
        while (i < n) {
            if (i + 8 <= n) {
                memcpy(&w, s + i, 8);
                if (!(w & 0x8080808080808080ULL)) { i += 8; continue; }
            }
            c = s[i];
            if (c < 0x80) { i++; continue; }
            if (c < 0xC2) return 0;
            if (c < 0xE0) {
                if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
                i += 2;
                continue;
            }
            if (c < 0xF0) {
                if (i + 2 >= n) return 0;
                c1 = s[i + 1];
                if (c == 0xE0) { if (c1 < 0xA0 || c1 > 0xBF) return 0; }
                else if (c == 0xED) { if (c1 < 0x80 || c1 > 0x9F) return 0; }
                else if ((c1 & 0xC0) != 0x80) return 0;
                if ((s[i + 2] & 0xC0) != 0x80) return 0;
                i += 3;
                continue;
            }
            if (c < 0xF5) {
                if (i + 3 >= n) return 0;
                c1 = s[i + 1];
                if (c == 0xF0) { if (c1 < 0x90 || c1 > 0xBF) return 0; }
                else if (c == 0xF4) { if (c1 < 0x80 || c1 > 0x8F) return 0; }
                else if ((c1 & 0xC0) != 0x80) return 0;
                if ((s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80) return 0;
                i += 4;
                continue;
            }
            return 0;
        }
        return 1;
    }
    """
    object ws_pack(object cls, Py_ssize_t n, PyObject** items)
    void ws_unmask(unsigned char* dst, const unsigned char* src, Py_ssize_t n,
                   const unsigned char* mask) nogil
    int ws_utf8_ok(const unsigned char* s, Py_ssize_t n) nogil


cdef int _GAP = GAP
cdef int _SKIPPED = SKIPPED
cdef object _RawFrame = RawFrame
cdef object _Frame = Frame
cdef object _Message = Message
cdef object _CloseSeen = CloseSeen
cdef object _Location = Location
cdef object _decompressobj = zlib.decompressobj
cdef object _zlib_error = zlib.error
cdef object _InflateError = InflateError
cdef object _Utf8Decoder = codecs.getincrementaldecoder("utf-8")
cdef object _ONE = 1
cdef object _TRUE = True
cdef object _FALSE = False
cdef object _NONE = None

# One scratch buffer for unmasking text that is only checked, not kept (single-threaded:
# the GIL is held throughout).
cdef unsigned char* _scratch = NULL
cdef Py_ssize_t _scratch_size = 0
cdef Py_ssize_t _SCRATCH_KEEP = 1 << 20


cdef unsigned char* _scratch_get(Py_ssize_t n) except NULL:
    global _scratch, _scratch_size
    cdef unsigned char* p
    if n <= _scratch_size:
        return _scratch
    if n > _SCRATCH_KEEP:
        p = <unsigned char*>malloc(n)
        if p == NULL:
            raise MemoryError()
        return p
    p = <unsigned char*>realloc(_scratch, _SCRATCH_KEEP)
    if p == NULL:
        raise MemoryError()
    _scratch = p
    _scratch_size = _SCRATCH_KEEP
    return p


cdef inline void _scratch_put(unsigned char* p):
    if p != _scratch:
        free(p)


cdef inline bytes _unmasked(const unsigned char* p, Py_ssize_t n, bint masked,
                            const unsigned char* mask):
    cdef bytes out
    if not masked:
        return PyBytes_FromStringAndSize(<const char*>p, n)
    out = PyBytes_FromStringAndSize(NULL, n)
    ws_unmask(<unsigned char*>PyBytes_AS_STRING(out), p, n, mask)
    return out


cdef object _raw_frame(bint fin, int rsv, int opcode, bint masked, const unsigned char* mask,
                       uint64_t length, object payload, object packet, int64_t offset,
                       object time, object last_packet, int flags):
    cdef object o_fin = fin
    cdef object o_rsv = rsv
    cdef object o_opcode = opcode
    cdef object o_mask = PyBytes_FromStringAndSize(<const char*>mask, 4) if masked else None
    cdef object o_length = length
    cdef object o_offset = offset
    cdef object o_flags = flags
    cdef PyObject* items[11]
    items[0] = <PyObject*>o_fin
    items[1] = <PyObject*>o_rsv
    items[2] = <PyObject*>o_opcode
    items[3] = <PyObject*>o_mask
    items[4] = <PyObject*>o_length
    items[5] = <PyObject*>payload
    items[6] = <PyObject*>packet
    items[7] = <PyObject*>o_offset
    items[8] = <PyObject*>time
    items[9] = <PyObject*>last_packet
    items[10] = <PyObject*>o_flags
    return ws_pack(_RawFrame, 11, items)


cdef class FrameReader:
    """Frames of one direction from in-order chunks: ``frames.FrameReader`` in C."""

    cdef public Py_ssize_t max_frame_bytes
    cdef public int64_t offset  # stream offset of the next byte to arrive
    cdef public bint lost  # frame boundaries lost after a gap: nothing more is parsed
    cdef bytes _head  # bytes of a header not yet complete
    cdef object _head_packet
    # the frame whose payload is arriving
    cdef bint _in
    cdef bint _fin
    cdef int _rsv
    cdef int _opcode
    cdef bint _masked
    cdef unsigned char _mask[4]
    cdef uint64_t _length
    cdef uint64_t _need  # payload bytes still to come
    cdef list _parts  # payload pieces (None: not kept)
    cdef object _packet
    cdef int64_t _frame_offset
    cdef int _flags

    def __init__(self, Py_ssize_t max_frame_bytes, int64_t offset=0):
        self.max_frame_bytes = max_frame_bytes
        self.offset = offset
        self.lost = False
        self._head = b""
        self._head_packet = 0
        self._in = False
        self._parts = None
        self._packet = 0
        self._frame_offset = 0
        self._flags = 0

    @property
    def in_payload(self):
        return self._in

    @property
    def pending(self):
        """Bytes buffered for an incomplete header."""
        return PyBytes_GET_SIZE(self._head)

    def feed(self, data, packet, time):
        """Frames completed by ``data`` (the next bytes of the direction)."""
        out = []
        if type(data) is not bytes:
            data = bytes(data)
        self._run(data, packet, time, out, None, 0)
        return out

    cdef int _emit(self, list out, WsFlow flow, int d, bint fin, int rsv, int opcode,
                   bint masked, const unsigned char* mask, uint64_t length,
                   const unsigned char* p, object payload, bint have, object fpacket,
                   int64_t offset, object time, object packet, int flags) except -1:
        if flow is not None:
            return flow._frame(d, fin, rsv, opcode, masked, mask, length, p, payload, have,
                               fpacket, offset, time, packet, flags)
        if have and payload is None:
            payload = PyBytes_FromStringAndSize(<const char*>p, <Py_ssize_t>length)
        PyList_Append(out, _raw_frame(fin, rsv, opcode, masked, mask, length, payload,
                                      fpacket, offset, time, packet, flags))
        return 0

    cdef int _run(self, bytes data, object packet, object time, list out, WsFlow flow,
                  int d) except -1:
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t avail, hl, start
        cdef uint64_t take, length
        cdef int64_t base
        cdef const unsigned char* buf
        cdef unsigned char b0, b1
        cdef int flags
        cdef bint masked
        cdef const unsigned char* mask
        cdef object head_packet, payload
        cdef uint64_t limit = <uint64_t>self.max_frame_bytes
        cdef unsigned char nomask[4]
        cdef int i
        nomask[0] = nomask[1] = nomask[2] = nomask[3] = 0
        if self.lost:
            self.offset += n
            return 0
        if self._in:
            take = self._need if self._need < <uint64_t>n else <uint64_t>n
            if self._parts is not None:
                PyList_Append(self._parts, data[:take] if take < <uint64_t>n else data)
            self._need -= take
            pos = <Py_ssize_t>take
            if self._need:
                self.offset += n
                return 0
            parts = self._parts
            self._parts = None
            self._in = False
            if parts is not None:
                payload = b"".join(parts)
                self._emit(out, flow, d, self._fin, self._rsv, self._opcode, self._masked,
                           self._mask, self._length,
                           <const unsigned char*>PyBytes_AS_STRING(payload), payload, True,
                           self._packet, self._frame_offset, time, packet, self._flags)
            else:
                self._emit(out, flow, d, self._fin, self._rsv, self._opcode, self._masked,
                           self._mask, self._length, NULL, None, False, self._packet,
                           self._frame_offset, time, packet, self._flags)
            if self.lost:  # cannot happen from a frame record; kept for safety
                self.offset += n
                return 0
        base = self.offset  # stream offset of data[0]
        head_packet = packet
        if PyBytes_GET_SIZE(self._head):
            # The header started in an earlier chunk: glue and re-base.
            base += pos - PyBytes_GET_SIZE(self._head)
            data = self._head + (data[pos:] if pos else data)
            head_packet = self._head_packet
            pos = 0
            n = PyBytes_GET_SIZE(data)
            self._head = b""
        buf = <const unsigned char*>PyBytes_AS_STRING(data)
        while True:
            avail = n - pos
            if avail < 2:
                break
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            hl = 2
            flags = 0
            if length == 126:
                if avail < 4:
                    break
                length = (<uint64_t>buf[pos + 2] << 8) | buf[pos + 3]
                hl = 4
                # RFC 6455 5.2: the minimal number of bytes MUST be used
                if length < 126:
                    flags = 1  # NON_MINIMAL
            elif length == 127:
                if avail < 10:
                    break
                length = 0
                for i in range(8):
                    length = (length << 8) | buf[pos + 2 + i]
                hl = 10
                if length >> 63:
                    flags |= 2  # LENGTH_TOP_BIT
                if length < 0x10000:
                    flags |= 1  # NON_MINIMAL
            masked = (b1 & 0x80) != 0
            if masked:
                if avail < hl + 4:
                    break
                mask = buf + pos + hl
                start = pos + hl + 4
            else:
                mask = nomask
                start = pos + hl
            if length <= <uint64_t>(n - start) and length <= limit:
                self._emit(out, flow, d, b0 >= 0x80, (b0 >> 4) & 7, b0 & 0x0F, masked, mask,
                           length, buf + start, None, True, head_packet, base + pos, time,
                           packet, flags)
                pos = start + <Py_ssize_t>length
                head_packet = packet
                continue
            # The payload runs past this chunk (or is too large to keep).
            self._in = True
            self._fin = b0 >= 0x80
            self._rsv = (b0 >> 4) & 7
            self._opcode = b0 & 0x0F
            self._masked = masked
            memcpy(self._mask, mask, 4)
            self._length = length
            self._packet = head_packet
            self._frame_offset = base + pos
            self._flags = flags
            if length > limit:
                self._flags |= _SKIPPED
                self._parts = None
            else:
                self._parts = []
            take = <uint64_t>(n - start)
            if length < take:
                take = length
            if take and self._parts is not None:
                PyList_Append(self._parts, data[start:start + <Py_ssize_t>take])
            self._need = length - take
            pos = start + <Py_ssize_t>take
            if self._need == 0:
                # Only possible for a skipped frame ending exactly here.
                self._in = False
                self._emit(out, flow, d, self._fin, self._rsv, self._opcode, masked, mask,
                           length, NULL, None, False, head_packet, self._frame_offset, time,
                           packet, self._flags)
                head_packet = packet
                continue
            break
        if pos < n and not self._in:
            self._head = data[pos:]
            self._head_packet = head_packet
        self.offset = base + n
        return 0

    def unfinished(self):
        """The frame whose payload was still arriving (the capture ended inside it)."""
        if not self._in:
            return None
        return _raw_frame(self._fin, self._rsv, self._opcode, self._masked, self._mask,
                          self._length, None, self._packet, self._frame_offset, 0.0,
                          self._packet, self._flags)

    def gap(self, int64_t length, packet, time):
        """As ``frames.FrameReader.gap``: ``("payload", frames)``, ``("lost", [])`` or
        ``("stopped", [])``."""
        self.offset += length
        if self.lost:
            return "stopped", []
        if self._in and <uint64_t>length <= self._need:
            self._need -= <uint64_t>length
            self._parts = None
            self._flags |= _GAP
            if self._need:
                return "payload", []
            self._in = False
            frame = _raw_frame(self._fin, self._rsv, self._opcode, self._masked, self._mask,
                               self._length, None, self._packet, self._frame_offset, time,
                               packet, self._flags)
            return "payload", [frame]
        self.lost = True
        self._in = False
        self._parts = None
        self._head = b""
        return "lost", []


cdef class WsFlow:
    """A WebSocket flow's bytes into its ``WebSocketStream`` (see the module docstring)."""

    cdef object ws
    cdef object _py_frame  # ws.frame
    cdef FrameReader r0, r1
    cdef object side0, side1  # SideState of the orig / resp direction
    cdef object name0, name1
    cdef bint client0, client1
    cdef bint closed0, closed1, open0, open1
    cdef list frames, messages, closes
    cdef object capture, stream
    cdef object _close_code, _close_reason
    cdef int64_t frame_count, message_total, count_client, count_server
    cdef int64_t cap
    cdef Py_ssize_t preview
    cdef Py_ssize_t budget
    cdef bint rsv1_first
    cdef bint per_frame
    cdef object inf0, inf1  # the sides' Inflaters, once made
    cdef bint takeover0, takeover1
    cdef public object last_time

    def __init__(self, ws, FrameReader r0, FrameReader r1, side0, side1, last_time):
        self.ws = ws
        self._py_frame = ws.frame
        self.r0 = r0
        self.r1 = r1
        self.side0 = side0
        self.side1 = side1
        self.name0 = side0.name
        self.name1 = side1.name
        self.client0 = side0.is_client
        self.client1 = side1.is_client
        self.frames = ws.frames
        self.messages = ws.messages
        self.closes = ws.closes
        self.capture = ws.capture
        self.stream = ws.stream
        self.cap = ws.limits.max_messages_per_connection
        self.preview = ws.limits.max_preview_bytes
        self.budget = ws.limits.max_decompressed_bytes
        self.rsv1_first = ws._rsv1_first
        self.per_frame = ws.deflate is not None and ws.deflate.per_frame
        self.last_time = last_time
        self.pull()

    cpdef push(self):
        """Write the counters kept here back to the WebSocketStream."""
        ws = self.ws
        ws.frame_count = self.frame_count
        ws.message_total = self.message_total
        counts = ws.message_count
        counts["client"] = self.count_client
        counts["server"] = self.count_server

    cpdef pull(self):
        """Read the counters and side states again after Python code ran."""
        ws = self.ws
        self.frame_count = ws.frame_count
        self.message_total = ws.message_total
        counts = ws.message_count
        self.count_client = counts["client"]
        self.count_server = counts["server"]
        self.closed0 = self.side0.closed
        self.open0 = self.side0.open
        self.closed1 = self.side1.closed
        self.open1 = self.side1.open

    def data(self, bint from_orig, chunk, packet, time):
        """``FlowParser.data`` in WebSocket mode."""
        self.last_time = time
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        if from_orig:
            self.r0._run(<bytes>chunk, packet, time, None, self, 0)
        else:
            self.r1._run(<bytes>chunk, packet, time, None, self, 1)

    def gap(self, bint from_orig, length, packet, time):
        """``FlowParser.gap`` in WebSocket mode."""
        if length <= 0:
            return
        reader = self.r0 if from_orig else self.r1
        name = self.name0 if from_orig else self.name1
        offset = reader.offset
        self.push()
        try:
            status, raws = reader.gap(length, packet, time)
            if raws:
                self.ws.on_frames(name, raws)
            self.ws.on_gap(name, offset, length, packet, status)
        finally:
            self.pull()

    cdef int _slow(self, int d, bint fin, int rsv, int opcode, bint masked,
                   const unsigned char* mask, uint64_t length, const unsigned char* p,
                   object payload, bint have, object fpacket, int64_t offset, object time,
                   object packet, int flags) except -1:
        if have and payload is None:
            payload = PyBytes_FromStringAndSize(<const char*>p, <Py_ssize_t>length)
        rf = _raw_frame(fin, rsv, opcode, masked, mask, length, payload, fpacket, offset, time,
                        packet, flags)
        self.push()
        try:
            self._py_frame(self.side0 if d == 0 else self.side1, rf)
        finally:
            self.pull()
        return 0

    cdef int _frame(self, int d, bint fin, int rsv, int opcode, bint masked,
                    const unsigned char* mask, uint64_t length, const unsigned char* p,
                    object payload, bint have, object fpacket, int64_t offset, object time,
                    object packet, int flags) except -1:
        """``WebSocketStream.frame``: the common cases here, the rest in Python."""
        cdef bint is_client = self.client0 if d == 0 else self.client1
        cdef bint is_open = self.open0 if d == 0 else self.open1
        cdef Py_ssize_t n, m, pv
        cdef unsigned char* q
        cdef const unsigned char* text
        cdef int64_t index, total
        cdef object preview, name, size, side
        cdef object o_total, o_opcode, o_index, o_rsv, o_length, o_offset, last
        cdef object close_code = None
        cdef object close_reason = None
        cdef PyObject* items[13]
        if (
            flags
            or not have
            or masked != is_client
            or (rsv and (rsv != 4 or opcode == 0 or opcode > 2 or not self.rsv1_first))
            or (opcode > 2 and (opcode < 8 or opcode > 10 or length > 125 or not fin))
            or (self.closed0 if d == 0 else self.closed1)
            or (opcode == 0 and (not is_open or self.per_frame))
            or (opcode and opcode <= 2 and (is_open or (rsv and self.per_frame)))
            or self.frame_count >= self.cap
            or self.message_total >= self.cap
        ):
            return self._slow(d, fin, rsv, opcode, masked, mask, length, p, payload, have,
                              fpacket, offset, time, packet, flags)
        name = self.name0 if d == 0 else self.name1
        n = <Py_ssize_t>length
        pv = self.preview
        index = self.frame_count
        if opcode == 0:
            # a continuation of this side's open message
            self.frame_count = index + 1
            side = self.side0 if d == 0 else self.side1
            side.m_frames += 1
            self._piece(d, side, fin, rsv, opcode, masked, mask, length, p, payload, fpacket, offset, time,
                        packet)
            if fin:
                self._end(d, side, time)
        elif opcode <= 2 and not fin:
            # the first fragment of a message
            self.frame_count = index + 1
            side = self.side0 if d == 0 else self.side1
            self._start(d, side, rsv, opcode, fpacket, index)
            self._piece(d, side, fin, rsv, opcode, masked, mask, length, p, payload, fpacket, offset, time,
                        packet)
        elif opcode <= 2 and rsv:
            self.frame_count = index + 1
            self._single_compressed(d, name, opcode, masked, mask, length, p, payload,
                                    fpacket, offset, time, packet, index)
        elif opcode <= 2:
            # a whole uncompressed message in one frame
            m = n if n < pv else pv
            if opcode == 1:
                if masked:
                    if n <= pv:
                        preview = _unmasked(p, n, True, mask)
                        text = <const unsigned char*>PyBytes_AS_STRING(preview)
                        if not ws_utf8_ok(text, n):
                            return self._slow(d, fin, rsv, opcode, masked, mask, length, p,
                                              payload, have, fpacket, offset, time, packet,
                                              flags)
                    else:
                        q = _scratch_get(n)
                        ws_unmask(q, p, n, mask)
                        if not ws_utf8_ok(q, n):
                            _scratch_put(q)
                            return self._slow(d, fin, rsv, opcode, masked, mask, length, p,
                                              payload, have, fpacket, offset, time, packet,
                                              flags)
                        preview = PyBytes_FromStringAndSize(<const char*>q, m)
                        _scratch_put(q)
                else:
                    if not ws_utf8_ok(p, n):
                        return self._slow(d, fin, rsv, opcode, masked, mask, length, p,
                                          payload, have, fpacket, offset, time, packet, flags)
                    if payload is not None and n <= pv:
                        preview = payload
                    else:
                        preview = PyBytes_FromStringAndSize(<const char*>p, m)
            else:
                if payload is not None and n <= pv and not masked:
                    preview = payload
                else:
                    preview = _unmasked(p, m, masked, mask)
            self.frame_count = index + 1
            total = self.message_total
            self.message_total = total + 1
            if is_client:
                self.count_client += 1
            else:
                self.count_server += 1
            o_total = total
            o_opcode = opcode
            size = length
            o_index = index
            items[0] = <PyObject*>o_total
            items[1] = <PyObject*>name
            items[2] = <PyObject*>time
            items[3] = <PyObject*>o_opcode
            items[4] = <PyObject*>size
            items[5] = <PyObject*>preview
            items[6] = <PyObject*>_FALSE
            items[7] = <PyObject*>_ONE
            items[8] = <PyObject*>fpacket
            items[9] = <PyObject*>_NONE
            items[10] = <PyObject*>_NONE
            items[11] = <PyObject*>o_index
            PyList_Append(self.messages, ws_pack(_Message, 12, items))
        elif opcode == 8:
            if not self._close(d, name, masked, mask, n, p, fpacket, offset, time, index):
                return self._slow(d, fin, rsv, opcode, masked, mask, length, p, payload, have,
                                  fpacket, offset, time, packet, flags)
            self.frame_count = index + 1
            close_code = self._close_code
            close_reason = self._close_reason
            self._close_code = self._close_reason = None
        else:
            # ping, pong: the record only
            self.frame_count = index + 1
        # the Frame record (index < cap: checked on entry)
        o_index = index
        o_rsv = rsv
        o_opcode = opcode
        o_length = length
        o_offset = offset
        if fpacket is packet or not (fpacket != packet):
            last = None
        else:
            last = packet
        items[0] = <PyObject*>o_index
        items[1] = <PyObject*>name
        items[2] = <PyObject*>time
        items[3] = <PyObject*>(_TRUE if fin else _FALSE)
        items[4] = <PyObject*>o_rsv
        items[5] = <PyObject*>o_opcode
        items[6] = <PyObject*>(_TRUE if masked else _FALSE)
        items[7] = <PyObject*>o_length
        items[8] = <PyObject*>fpacket
        items[9] = <PyObject*>o_offset
        items[10] = <PyObject*>close_code
        items[11] = <PyObject*>close_reason
        items[12] = <PyObject*>last
        PyList_Append(self.frames, ws_pack(_Frame, 13, items))
        return 0

    cdef bint _close(self, int d, object name, bint masked, const unsigned char* mask,
                     Py_ssize_t n, const unsigned char* p, object fpacket, int64_t offset,
                     object time, int64_t index) except -1:
        """``WebSocketStream._close`` for a close with no problem to report (empty, or an
        allowed code and a UTF-8 reason); False (nothing done) for any other."""
        cdef unsigned char body[125]
        cdef int code
        cdef PyObject* items[7]
        cdef object o_code = None
        cdef object before = None
        cdef object reason = None
        cdef object o_index
        if n == 1:
            return False
        if n:
            if masked:
                ws_unmask(body, p, n, mask)
            else:
                memcpy(body, p, n)
            code = (body[0] << 8) | body[1]
            # close_code_problem(code) is None
            if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
                return False
            if not ws_utf8_ok(body + 2, n - 2):
                return False
            o_code = code
            reason = (<bytes>PyBytes_FromStringAndSize(<const char*>body + 2, n - 2)).decode(
                "utf-8"
            )
        o_index = index
        location = _Location(self.capture, fpacket, self.stream, name, offset)
        items[0] = <PyObject*>name
        items[1] = <PyObject*>time
        items[2] = <PyObject*>o_code
        items[3] = <PyObject*>reason
        items[4] = <PyObject*>location
        items[5] = <PyObject*>o_index
        # WebSocketStream._close: CloseSeen.before
        if (
            PyList_GET_SIZE(self.closes) == 0
            and not self.open0
            and not self.open1
            and self.message_total <= self.cap
        ):
            before = (self.count_client, self.count_server, PyList_GET_SIZE(self.messages))
        items[6] = <PyObject*>before
        PyList_Append(self.closes, ws_pack(_CloseSeen, 7, items))
        (self.side0 if d == 0 else self.side1).closed = True
        if d == 0:
            self.closed0 = True
        else:
            self.closed1 = True
        self._close_code = o_code
        self._close_reason = reason
        return True

    cdef int _start(self, int d, object side, int rsv, int opcode, object fpacket,
                    int64_t index) except -1:
        """``WebSocketStream._start`` (not deflate-frame: that goes to Python)."""
        side.open = True
        if d == 0:
            self.open0 = True
        else:
            self.open1 = True
        side.m_opcode = opcode
        # RSV1 here passed the header checks: permessage-deflate, or no handshake seen
        side.m_compressed = rsv != 0
        side.m_frames = 1
        side.m_packet = fpacket
        side.m_frame_index = index
        side.m_size = 0
        side.m_preview = b""
        side.m_utf8 = _Utf8Decoder() if opcode == 1 else None
        side.m_known = True
        side.m_wire = 0
        side.m_bomb = False
        side.m_inflating = False
        if rsv:
            self.ws._inflater(side).start()
            side.m_inflating = True
        return 0

    cdef int _piece(self, int d, object side, bint fin, int rsv, int opcode, bint masked,
                    const unsigned char* mask, uint64_t length, const unsigned char* p, object payload, object fpacket,
                    int64_t offset, object time, object packet) except -1:
        """``WebSocketStream._piece`` for a frame whose payload is at hand (not
        deflate-frame: that goes to Python)."""
        cdef Py_ssize_t n = <Py_ssize_t>length
        cdef Py_ssize_t room, pv = self.preview
        cdef bytes data, raw
        side.m_wire += length
        if not side.m_known:
            # an earlier piece was unknown (or inflating stopped): what follows is unknown
            if not side.m_compressed:
                side.m_size += length
            return 0
        dec = side.m_utf8
        if not side.m_inflating:
            if dec is None:
                # binary: only the bytes that still fit in the preview are unmasked
                side.m_size += length
                room = pv - PyBytes_GET_SIZE(side.m_preview)
                if room > 0:
                    side.m_preview += _unmasked(p, n if n < room else room, masked, mask)
                return 0
            data = _unmasked(p, n, masked, mask)
        else:
            raw = _unmasked(p, n, masked, mask)
            inf = side.inflater
            if inf is None:
                inf = self.ws._inflater(side)
            try:
                data, over = inf.feed(raw, self.budget - side.m_size, fin)
            except _InflateError as exc:
                rf = _raw_frame(fin, rsv, opcode, masked, mask, length, self._payload(p, n, payload),
                                fpacket, offset, time, packet, 0)
                self.ws._inflate_failed(side, rf, str(exc))
                side.m_known = False
                side.m_utf8 = None
                side.m_inflating = False
                return 0
            if over:
                rf = _raw_frame(fin, rsv, opcode, masked, mask, length, self._payload(p, n, payload),
                                fpacket, offset, time, packet, 0)
                self.ws._bomb(side.name, rf)
                side.m_known = False
                side.m_bomb = True
                side.m_inflating = False
        side.m_size += PyBytes_GET_SIZE(data)
        room = pv - PyBytes_GET_SIZE(side.m_preview)
        if room > 0:
            side.m_preview += data[:room]
        dec = side.m_utf8
        if dec is not None:
            try:
                dec.decode(data, fin and side.m_known)
            except UnicodeDecodeError as exc:
                self.ws._bad_utf8(side.name, fpacket,
                                  side.m_size - PyBytes_GET_SIZE(data) + exc.start,
                                  data[exc.start:], offset)
                side.m_utf8 = None
        return 0

    cdef bytes _payload(self, const unsigned char* p, Py_ssize_t n, object payload):
        if payload is not None:
            return payload
        return PyBytes_FromStringAndSize(<const char*>p, n)

    cdef int _end(self, int d, object side, object time) except -1:
        """``WebSocketStream._end`` and ``_record`` (the record limit is checked on entry)."""
        cdef int64_t total
        cdef PyObject* items[12]
        cdef object o_total, o_size, preview, compressed
        side.open = False
        if d == 0:
            self.open0 = False
        else:
            self.open1 = False
        compressed = side.m_compressed
        failed_inflate = compressed and not side.m_known and not side.m_bomb
        o_size = side.m_wire if failed_inflate else side.m_size
        preview = None if failed_inflate else side.m_preview
        total = self.message_total
        self.message_total = total + 1
        if self.client0 if d == 0 else self.client1:
            self.count_client += 1
        else:
            self.count_server += 1
        o_total = total
        opcode = side.m_opcode
        frames = side.m_frames
        mpacket = side.m_packet
        findex = side.m_frame_index
        items[0] = <PyObject*>o_total
        items[1] = <PyObject*>(self.name0 if d == 0 else self.name1)
        items[2] = <PyObject*>time
        items[3] = <PyObject*>opcode
        items[4] = <PyObject*>o_size
        items[5] = <PyObject*>preview
        items[6] = <PyObject*>compressed
        items[7] = <PyObject*>frames
        items[8] = <PyObject*>mpacket
        items[9] = <PyObject*>_NONE
        items[10] = <PyObject*>_NONE
        items[11] = <PyObject*>findex
        PyList_Append(self.messages, ws_pack(_Message, 12, items))
        return 0

    cdef int _single_compressed(self, int d, object name, int opcode, bint masked,
                                const unsigned char* mask, uint64_t length,
                                const unsigned char* p, object payload, object fpacket,
                                int64_t offset, object time, object packet,
                                int64_t index) except -1:
        """``WebSocketStream._single_compressed`` (RSV1 set, one frame, payload at hand)."""
        cdef Py_ssize_t n = <Py_ssize_t>length
        cdef Py_ssize_t size, pv
        cdef bytes raw, out
        cdef int64_t total
        cdef PyObject* items[12]
        cdef unsigned char* q
        cdef object o_total, o_opcode, o_index, o_size, preview
        cdef bint takeover
        side = self.side0 if d == 0 else self.side1
        ws = self.ws
        # The side's Inflater, made once (SideState.inflater is never replaced); its
        # context takeover and window are fixed when it is made.
        inf = self.inf0 if d == 0 else self.inf1
        if inf is None:
            inf = side.inflater
            if inf is None:
                inf = ws._inflater(side)
            if d == 0:
                self.inf0 = inf
                self.takeover0 = inf.takeover
            else:
                self.inf1 = inf
                self.takeover1 = inf.takeover
        takeover = self.takeover0 if d == 0 else self.takeover1
        # Inflater.start()
        zd = inf._d if takeover else None
        if zd is None or inf.broken:
            zd = _decompressobj(-inf.wbits)
            inf._d = zd
            inf.broken = False
        # Inflater.feed(raw, budget, final=True): the payload unmasked, the tail appended
        raw = PyBytes_FromStringAndSize(NULL, n + 4)
        q = <unsigned char*>PyBytes_AS_STRING(raw)
        if masked:
            ws_unmask(q, p, n, mask)
        else:
            memcpy(q, p, n)
        q[n] = 0
        q[n + 1] = 0
        q[n + 2] = 0xFF
        q[n + 3] = 0xFF
        budget = self.budget
        preview = None
        try:
            out = zd.decompress(raw, budget + 1)
        except _zlib_error as exc:
            inf.broken = True
            rf = self._rawframe_for(opcode, masked, mask, length, p, payload, fpacket, offset,
                                    time, packet)
            ws._inflate_failed(side, rf, str(exc))
            o_size = length  # the wire size: no garbage
        else:
            if PyBytes_GET_SIZE(out) > budget or zd.unconsumed_tail:
                inf.broken = True
                out = out[:budget]
                rf = self._rawframe_for(opcode, masked, mask, length, p, payload, fpacket,
                                        offset, time, packet)
                ws._bomb(name, rf)
            elif opcode == 1 and not ws_utf8_ok(
                <const unsigned char*>PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out)
            ):
                try:
                    out.decode("utf-8")
                except UnicodeDecodeError as err:
                    ws._bad_utf8(name, fpacket, err.start, out[err.start:], offset)
            size = PyBytes_GET_SIZE(out)
            pv = self.preview
            preview = out[:pv] if size > pv else out
            o_size = size
        # WebSocketStream._record
        total = self.message_total
        self.message_total = total + 1
        if d == 0 and self.client0 or d == 1 and self.client1:
            self.count_client += 1
        else:
            self.count_server += 1
        o_total = total
        o_opcode = opcode
        o_index = index
        items[0] = <PyObject*>o_total
        items[1] = <PyObject*>name
        items[2] = <PyObject*>time
        items[3] = <PyObject*>o_opcode
        items[4] = <PyObject*>o_size
        items[5] = <PyObject*>preview
        items[6] = <PyObject*>_TRUE
        items[7] = <PyObject*>_ONE
        items[8] = <PyObject*>fpacket
        items[9] = <PyObject*>_NONE
        items[10] = <PyObject*>_NONE
        items[11] = <PyObject*>o_index
        PyList_Append(self.messages, ws_pack(_Message, 12, items))
        return 0

    cdef object _rawframe_for(self, int opcode, bint masked, const unsigned char* mask,
                              uint64_t length, const unsigned char* p, object payload,
                              object fpacket, int64_t offset, object time, object packet):
        if payload is None:
            payload = PyBytes_FromStringAndSize(<const char*>p, <Py_ssize_t>length)
        return _raw_frame(True, 4, opcode, masked, mask, length, payload, fpacket, offset,
                          time, packet, 0)

