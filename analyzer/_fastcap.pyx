# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled common case of the packet-capture hot loop (see ``analyzer.accel``).

The Python modules ``analyzer.inputs.pcap`` and ``analyzer.streams.tcp`` are the reference:
this module repeats only what nearly every packet needs and hands everything else back to
their methods, on the same objects, so that the results are the same either way.

``Scanner(reader, f, header, pcapng)``
    The record loop of ``PacketReader._pcap`` / ``_pcapng``. Iterated, it yields the same
    segment tuples. It decodes the common link layers, IPv4 and IPv6 without extension
    headers and TCP segments (whole or cut by the snapshot length) itself; anything else
    (fragments, truncated or malformed headers, extension headers, tunnels, unknown link
    types, Simple and obsolete Packet Blocks, interface, section and secrets blocks, every
    error and anomaly) goes to the reader's own methods (``_decode``, ``_other_packet``,
    ``_idb``, ``_shb``, ``_dsb``, ``note``, ``_cut``...). The file is read a chunk at a time
    into one buffer kept for the pass (``reader._readinto`` for plain files, ``reader._read``
    for gzip), refilled when and as much as the Python loops refill theirs.

``run(tracker, segments)``
    ``TcpTracker._run``: for a ``Scanner`` it takes each segment straight from the record
    loop (no tuple); for any other iterable it unpacks the tuples. The in-order case (the
    next expected byte, nothing held, nothing missing) is done here; new flows and SYNs,
    held/trimmed/retransmitted segments, FIN/RST, new sinks and dropped sinks go to the
    tracker's methods.

``Half`` and ``TcpFlow`` stay the Python classes of ``analyzer.streams.tcp``: their slots
are read and written here at the offsets their member descriptors give (checked when the
module is loaded: plain object slots, or the module refuses to load and the Python code
runs).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItemWithError
from cpython.float cimport PyFloat_FromDouble
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.long cimport PyLong_FromLong, PyLong_FromLongLong, PyLong_FromUnsignedLong
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.buffer cimport PyBUF_WRITE
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove, memset

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        const char *name
        int type
        Py_ssize_t offset
        int flags
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member
    object PyObject_VectorcallMethod(object name, PyObject **args, size_t nargsf, PyObject *kwnames)
    size_t PY_VECTORCALL_ARGUMENTS_OFFSET

cdef extern from *:
    """
    /* ticks / div rounded to the nearest double, ties to even: what Python's int / int
       gives (correctly rounded), for ticks >= 2**53. 0 when not done here (*out unset). */
    static int fastcap_exact_div(uint64_t ticks, uint64_t div, double *out) {
    #ifdef __SIZEOF_INT128__
        uint64_t q, r, m, rem, scale_bits;
        double scale;
        int k, s;
        if (div == 0) return 0;
        q = ticks / div;
        r = ticks % div;
        if (q == 0) return 0;
        k = 63 - __builtin_clzll(q);      /* 2**k <= ticks / div < 2**(k+1) */
        s = 52 - k;
        if (s < 0) return 0;
        /* m = floor(ticks * 2**s / div), in [2**52, 2**53); rem what is left over */
        if (s == 0) {
            m = q;
            rem = r;
        } else if (r >> (64 - s) == 0) {   /* r << s fits: two 64-bit divisions */
            m = (q << s) + (r << s) / div;
            rem = (r << s) % div;
        } else {
            unsigned __int128 n = (unsigned __int128)r << s;
            m = (q << s) + (uint64_t)(n / div);
            rem = (uint64_t)(n % div);
        }
        /* round half to even; rem < div, so 2 * rem is compared without overflow */
        if (rem > div - rem || (rem == div - rem && (m & 1))) m += 1;
        scale_bits = (uint64_t)(1023 - s) << 52;   /* 2**-s, exact */
        memcpy(&scale, &scale_bits, sizeof scale);
        *out = (double)m * scale;
        return 1;
    #else
        (void)ticks; (void)div; (void)out;
        return 0;
    #endif
    }
    """
    int fastcap_exact_div(uint64_t ticks, uint64_t div, double *out) noexcept nogil


from analyzer.inputs import pcap as _pcap
from analyzer.streams import tcp as _tcp

cdef enum:
    T_OBJECT_EX = 16  # structmember.h: a PyObject * slot, AttributeError when NULL
    READONLY = 1

cdef Py_ssize_t CHUNK = _pcap.CHUNK
cdef Py_ssize_t MAX_RECORD = _pcap.MAX_RECORD
cdef uint32_t PCAP_MAGIC_NS = _pcap.PCAP_MAGIC_NS
cdef uint32_t PCAPNG_SHB = _pcap.PCAPNG_SHB
cdef uint32_t PCAPNG_BOM = _pcap.PCAPNG_BOM
cdef uint32_t BT_IDB = _pcap.BT_IDB
cdef uint32_t BT_PB = _pcap.BT_PB
cdef uint32_t BT_SPB = _pcap.BT_SPB
cdef uint32_t BT_EPB = _pcap.BT_EPB
cdef uint32_t BT_DSB = _pcap.BT_DSB
cdef int GTP_U_PORT = _pcap.GTP_U_PORT
cdef dict MIN_BLOCK = _pcap.MIN_BLOCK

# The link types the record loop decodes itself; any other goes to the reader's _decode
# (ip_offset returns -1 for it there too, but the Python code is the authority).
cdef int LT_NULL = 0, LT_ETHERNET = 1, LT_RAW_BSD = 12, LT_RAW = 101, LT_LOOP = 108
cdef int LT_SLL = 113, LT_IPV4 = 228, LT_IPV6 = 229, LT_SLL2 = 276

cdef double TWO53 = 9007199254740992.0
cdef long long MASK32 = 0xFFFFFFFF

# Key objects of recent 4-tuples, by a hash of their bytes: a packet of a flow seen lately
# reuses its key object (its hash is cached, and the dict compares it by identity first).
cdef enum:
    KEY_CACHE = 4096

cdef enum:
    SKIP = 0  # not TCP, nothing to note: the Python decoder would return None quietly
    SEG = 1  # a whole TCP segment, decoded here
    SLOW = 2  # anything else: the reader's _decode decides


# -- slots of the tracker's Python objects --------------------------------------------------

cdef Py_ssize_t _slot(type cls, str name) except -1:
    d = cls.__dict__.get(name)
    if type(d).__name__ != "member_descriptor":
        raise ImportError(f"{cls.__name__}.{name} is not a slot")
    cdef PyMemberDef *m = (<PyMemberDescrObject *><PyObject *>d).d_member
    if m.type != T_OBJECT_EX or m.flags & READONLY or m.offset <= 0:
        raise ImportError(f"{cls.__name__}.{name} is not a plain object slot")
    return m.offset


cdef PyTypeObject *HALF_TYPE = <PyTypeObject *>_tcp.Half
cdef PyTypeObject *FLOW_TYPE = <PyTypeObject *>_tcp.TcpFlow
cdef Py_ssize_t H_FLOW = _slot(_tcp.Half, "flow")
cdef Py_ssize_t H_FROM_ORIG = _slot(_tcp.Half, "from_orig")
cdef Py_ssize_t H_NXT = _slot(_tcp.Half, "nxt")
cdef Py_ssize_t H_DELIVERED = _slot(_tcp.Half, "delivered")
cdef Py_ssize_t H_PENDING = _slot(_tcp.Half, "pending")
cdef Py_ssize_t F_LAST_PACKET = _slot(_tcp.TcpFlow, "last_packet")
cdef Py_ssize_t F_LAST_TIME = _slot(_tcp.TcpFlow, "last_time")
cdef Py_ssize_t F_SINK = _slot(_tcp.TcpFlow, "sink")


cdef inline PyObject *_get(object o, Py_ssize_t off):
    """The slot's object (borrowed), NULL when unset."""
    return (<PyObject **>((<char *><PyObject *>o) + off))[0]


cdef inline void _set(object o, Py_ssize_t off, object value):
    cdef PyObject **p = <PyObject **>((<char *><PyObject *>o) + off)
    cdef PyObject *old = p[0]
    Py_INCREF(value)
    p[0] = <PyObject *>value
    Py_XDECREF(old)


cdef inline object _attr(object o, Py_ssize_t off, str name):
    """The slot's value; an unset slot raises AttributeError as the Python code would."""
    cdef PyObject *v = _get(o, off)
    if v == NULL:
        return getattr(o, name)
    return <object>v


# -- byte order ------------------------------------------------------------------------------

cdef inline uint32_t _u32(const unsigned char *p, bint big) noexcept nogil:
    if big:
        return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | p[0]


cdef inline uint32_t _be32(const unsigned char *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


# -- link, IP and TCP layers (the common case of PacketReader._decode) -----------------------

cdef struct Decoded:
    Py_ssize_t addr  # source address, then destination address
    Py_ssize_t alen  # 8 (IPv4) or 32 (IPv6)
    Py_ssize_t tcp  # TCP header
    Py_ssize_t tcp_end  # payload start
    Py_ssize_t pay_end
    Py_ssize_t missing  # bytes the IP header announces beyond the record (snapshot length)
    bint snapped  # the record ends before the IP packet does (counted even if missing is 0)


cdef inline Py_ssize_t _ip_at(const unsigned char *b, Py_ssize_t ip, Py_ssize_t end) noexcept nogil:
    if ip >= end:
        return -1
    cdef int version = b[ip] >> 4
    return ip if version == 4 or version == 6 else -1


cdef Py_ssize_t _ip_offset(
    const unsigned char *b, Py_ssize_t start, Py_ssize_t end, int linktype
) noexcept nogil:
    """linktypes.ip_offset."""
    cdef Py_ssize_t p
    cdef unsigned int ethertype, le, be, family
    if linktype == LT_ETHERNET:
        p = start + 12
        if p + 2 > end:
            return -1
        ethertype = (b[p] << 8) | b[p + 1]
        while ethertype == 0x8100 or ethertype == 0x88A8 or ethertype == 0x9100:
            p += 4
            if p + 2 > end:
                return -1
            ethertype = (b[p] << 8) | b[p + 1]
        if ethertype == 0x0800 or ethertype == 0x86DD:
            return _ip_at(b, p + 2, end)
        return -1
    if linktype == LT_SLL:
        if start + 16 > end:
            return -1
        ethertype = (b[start + 14] << 8) | b[start + 15]
        if ethertype == 0x0800 or ethertype == 0x86DD:
            return _ip_at(b, start + 16, end)
        return -1
    if linktype == LT_SLL2:
        if start + 20 > end:
            return -1
        ethertype = (b[start] << 8) | b[start + 1]
        if ethertype == 0x0800 or ethertype == 0x86DD:
            return _ip_at(b, start + 20, end)
        return -1
    if linktype == LT_RAW or linktype == LT_IPV4 or linktype == LT_IPV6 or linktype == LT_RAW_BSD:
        return _ip_at(b, start, end)
    if linktype == LT_NULL or linktype == LT_LOOP:
        if start + 4 > end:
            return -1
        be = _u32(b + start, True)
        if linktype == LT_LOOP:
            family = be
        else:
            le = _u32(b + start, False)
            family = le if le < be else be
        if family == 2 or family == 10 or family == 24 or family == 28 or family == 30:
            return _ip_at(b, start + 4, end)
        return -1
    return -1


cdef int _decode(
    const unsigned char *b, Py_ssize_t start, Py_ssize_t end, int linktype, Decoded *d
) noexcept nogil:
    """SEG (``d`` filled), SKIP, or SLOW: the cases PacketReader._decode notes (fragments,
    truncated or malformed headers), IPv6 extension headers, tunnels."""
    cdef Py_ssize_t ip, l4, declared_end, tcp_end
    cdef int proto, ihl
    cdef unsigned int total
    if linktype == LT_ETHERNET and end - start >= 34 and b[start + 12] == 8 and b[start + 13] == 0:
        ip = start + 14
        if b[ip] >> 4 != 4:
            return SLOW  # the Python decoder takes it as IPv4 all the same: let it
    elif linktype == LT_ETHERNET or linktype == LT_SLL or linktype == LT_SLL2 or linktype == LT_RAW \
            or linktype == LT_IPV4 or linktype == LT_IPV6 or linktype == LT_RAW_BSD \
            or linktype == LT_NULL or linktype == LT_LOOP:
        ip = _ip_offset(b, start, end, linktype)
        if ip < 0:
            return SKIP
    else:
        return SLOW
    if b[ip] >> 4 == 4:
        if ip + 20 > end:
            return SLOW
        if b[ip + 6] & 0x3F or b[ip + 7]:
            return SLOW
        ihl = (b[ip] & 0x0F) << 2
        proto = b[ip + 9]
        total = (b[ip + 2] << 8) | b[ip + 3]
        if ihl < 20 or (total and total < <unsigned int>ihl):
            return SLOW
        l4 = ip + ihl
        declared_end = ip + total if total else end
        d.addr = ip + 12
        d.alen = 8
    else:
        if ip + 40 > end:
            return SLOW
        proto = b[ip + 6]
        if proto == 0 or proto == 43 or proto == 60 or proto == 51 or proto == 135 \
                or proto == 139 or proto == 140 or proto == 44:
            return SLOW
        declared_end = ip + 40 + ((b[ip + 4] << 8) | b[ip + 5])
        l4 = ip + 40
        d.addr = ip + 8
        d.alen = 32
    if proto == 6:
        if l4 + 20 > end:
            return SLOW
        tcp_end = l4 + ((b[l4 + 12] >> 4) << 2)
        if tcp_end < l4 + 20:
            return SLOW
        d.tcp = l4
        d.tcp_end = tcp_end
        d.snapped = declared_end > end
        if not d.snapped:
            d.pay_end = declared_end
            d.missing = 0
        else:
            # The snapshot length cut the packet: the rest is missing (reader.snapped counted).
            d.pay_end = end
            d.missing = declared_end - (end if end > tcp_end else tcp_end)
        return SEG
    if proto == 17:
        if l4 + 8 <= end and (
            ((b[l4] << 8) | b[l4 + 1]) == GTP_U_PORT or ((b[l4 + 2] << 8) | b[l4 + 3]) == GTP_U_PORT
        ):
            return SLOW
        return SKIP
    if proto == 4 or proto == 41:
        return SLOW
    return SKIP


# -- the record loop -------------------------------------------------------------------------

cdef struct Itf:
    int linktype
    bint exact  # time = ticks / divisor + offset can be done here, rounded as Python does
    double divisor
    uint64_t idivisor  # the divisor as an integer, 0 when it is not one below 2**64
    double offset


cdef class Scanner:
    """One pass of ``PacketReader`` over a pcap or pcapng file (see the module doc).

    The file is read a block at a time into one buffer that is kept for the whole pass
    (plain files with ``reader._readinto``, compressed ones with ``reader._read``), refilled
    exactly when and as much as the Python loops refill theirs. The reader's own methods,
    when a record needs them, get a ``bytes`` copy of the buffer as the Python loop would
    have it (made once per block, and only for a block that has such a record).
    """

    cdef object reader, f, read, readinto, endian
    cdef bytes header
    cdef bint gz  # f is not a plain file: read with reader._read and copied
    cdef unsigned char *mem
    cdef const unsigned char *b
    cdef Py_ssize_t cap, pos, blen
    cdef object view  # memoryview of mem, for readinto
    cdef object copy  # bytes(mem[:blen]) for the reader's methods, or None
    cdef long long number
    cdef bint ng, big, started, done
    # pcap
    cdef int linktype
    cdef double divisor
    # pcapng
    cdef list interfaces  # the reader's _Interface objects
    cdef Itf *itfs
    cdef Py_ssize_t nitf, itf_room
    # the segment found by advance()
    cdef long long s_number
    cdef double s_time
    cdef object s_time_obj  # when the Python arithmetic gave the time (or None)
    cdef bytes s_key
    cdef uint32_t s_seq
    cdef int s_flags
    cdef object s_payload
    cdef long long s_missing
    cdef PyObject *keys[KEY_CACHE]

    def __cinit__(self):
        self.itfs = NULL
        self.mem = NULL
        memset(self.keys, 0, sizeof(self.keys))

    def __init__(self, reader, f, bytes header, bint pcapng):
        """``header``: the pcap file header (24 bytes), or the first 4 bytes of a pcapng
        file, as ``PacketReader.__iter__`` read them from ``f``."""
        self.reader = reader
        self.f = f
        self.read = reader._read
        self.readinto = reader._readinto
        self.gz = isinstance(f, _pcap._Gunzip)
        self.header = header
        self.ng = pcapng
        self.interfaces = []
        self.endian = "<"
        self.s_time_obj = None
        self._grow(2 * CHUNK)

    def __dealloc__(self):
        PyMem_Free(self.itfs)
        PyMem_Free(self.mem)
        for i in range(KEY_CACHE):
            Py_XDECREF(self.keys[i])

    def __del__(self):
        if self.reader is not None:
            self.close()

    def close(self):
        """As a generator's ``close()``: a pass under way ends as the Python generator's
        ``finally`` would end it; one never started only lets its file go."""
        if not self.done:
            if self.started:
                self.finish()
            else:
                self.done = True
                self.f.close()

    cdef int _grow(self, Py_ssize_t cap) except -1:
        cdef unsigned char *mem = <unsigned char *>PyMem_Realloc(self.mem, cap)
        if mem == NULL:
            raise MemoryError()
        self.mem = mem
        self.b = mem
        self.cap = cap
        self.view = PyMemoryView_FromMemory(<char *>mem, cap, PyBUF_WRITE)
        return 0

    cdef int _refill(self, Py_ssize_t n) except -1:
        """``buf = buf[pos:] + read(f, n)``."""
        cdef Py_ssize_t rem = self.blen - self.pos
        cdef Py_ssize_t need = rem + n, got
        cdef bytes data
        if self.pos:
            memmove(self.mem, self.mem + self.pos, rem)
        self.pos = 0
        self.blen = rem
        self.copy = None
        if need > self.cap or (self.cap > 4 * CHUNK and need <= 2 * CHUNK):
            self._grow(max(need, 2 * CHUNK))
        if self.gz:
            data = self.read(self.f, n)
            got = PyBytes_GET_SIZE(data)
            if got > n:
                raise ValueError(f"read({n}) returned {got} bytes")
            memcpy(self.mem + rem, PyBytes_AS_STRING(data), got)
        else:
            got = self.readinto(self.f, self.view[rem:need])
            if not 0 <= got <= n:
                raise ValueError(f"readinto of {n} bytes returned {got}")
        self.blen = rem + got
        return 0

    cdef bytes _buf(self):
        """The buffer as the Python loops hold it (``bytes``), for the reader's methods."""
        if self.copy is None:
            self.copy = PyBytes_FromStringAndSize(<const char *>self.mem, self.blen)
        return self.copy

    cdef inline bytes _bytes(self, Py_ssize_t start, Py_ssize_t stop):
        if start >= stop:
            return b""
        return PyBytes_FromStringAndSize(<const char *>self.b + start, stop - start)

    cpdef finish(self):
        """PacketReader._done: the pass is over (end, error, or abandoned)."""
        if not self.done and self.started:
            self.done = True
            self.copy = None
            self.reader._done(self.f, self.number)

    def __iter__(self):
        return self

    def __next__(self):
        if not self.advance():
            raise StopIteration
        return (
            PyLong_FromLongLong(self.s_number),
            self.time(),
            self.s_key,
            PyLong_FromUnsignedLong(self.s_seq),
            PyLong_FromLong(self.s_flags),
            self.s_payload,
            PyLong_FromLongLong(self.s_missing),
        )

    cdef inline object time(self):
        if self.s_time_obj is not None:
            return self.s_time_obj
        return PyFloat_FromDouble(self.s_time)

    cdef int _start(self) except -1:
        """What the Python generators do when first resumed."""
        cdef uint32_t magic
        cdef const unsigned char *h = <const unsigned char *>PyBytes_AS_STRING(self.header)
        self.started = True
        if self.ng:
            # buf = head + read(f, CHUNK)
            memcpy(self.mem, h, 4)
            self.blen = 4
            self._refill(CHUNK)
            self.big = False
        else:
            # The byte order from the magic, the link type from the header.
            magic = _u32(h, False)
            self.big = not (magic == _pcap.PCAP_MAGIC_US or magic == PCAP_MAGIC_NS)
            magic = _u32(h, self.big)
            self.divisor = 1e9 if magic == PCAP_MAGIC_NS else 1e6
            # The top bits of the link type field may carry an FCS length (pcap-savefile).
            self.linktype = _u32(h + 20, self.big) & 0x0FFFFFFF
            self.reader._linktype_seen(self.linktype)
        self.number = self.reader.packets
        return 0

    cdef int advance(self) except -1:
        """Find the next TCP segment: 1 when found, 0 at the end of the pass."""
        cdef int found
        if self.done:
            return 0
        try:
            if not self.started:
                self._start()
            if self.ng:
                found = self._pcapng()
            else:
                found = self._pcap()
        except BaseException:
            self.finish()
            raise
        if not found:
            self.finish()
        return found

    cdef inline int _segment(self, Py_ssize_t start, Py_ssize_t stop, int linktype) except -1:
        """Decode a record's packet: 1 when it is a TCP segment (fields set), else 0."""
        cdef Decoded d
        cdef int kind = _decode(self.b, start, stop, linktype, &d)
        cdef const unsigned char *b = self.b
        cdef unsigned char raw[36]
        cdef uint32_t w, h = 0
        cdef Py_ssize_t i, n
        cdef PyObject *cached
        if kind == SKIP:
            return 0
        if kind == SLOW:
            return self._slow(start, stop, linktype)
        n = d.alen + 4
        memcpy(raw, b + d.addr, d.alen)
        memcpy(raw + d.alen, b + d.tcp, 4)
        for i in range(0, n, 4):
            memcpy(&w, raw + i, 4)
            h = (h ^ w) * 0x9E3779B1u
        h = (h ^ (h >> 16)) & (KEY_CACHE - 1)
        cached = self.keys[h]
        if (
            cached != NULL
            and PyBytes_GET_SIZE(<object>cached) == n
            and memcmp(PyBytes_AS_STRING(<object>cached), raw, n) == 0
        ):
            self.s_key = <bytes>cached
        else:
            key = PyBytes_FromStringAndSize(<char *>raw, n)
            Py_INCREF(key)
            Py_XDECREF(cached)
            self.keys[h] = <PyObject *>key
            self.s_key = key
        self.s_seq = _be32(b + d.tcp + 4)
        self.s_flags = b[d.tcp + 13]
        self.s_payload = self._bytes(d.tcp_end, d.pay_end)
        self.s_missing = d.missing
        self.s_number = self.number
        if d.snapped:
            self.reader.snapped += 1
        return 1

    cdef int _slow(self, Py_ssize_t start, Py_ssize_t stop, int linktype) except -1:
        seg = self.reader._decode(self._buf(), start, stop, linktype, self.number)
        if seg is None:
            return 0
        key, tcp, tcp_end, pay_end, missing = seg
        cdef Py_ssize_t t = tcp
        self.s_key = key
        self.s_seq = _be32(self.b + t + 4)
        self.s_flags = self.b[t + 13]
        self.s_payload = self._bytes(tcp_end, pay_end)
        self.s_missing = missing
        self.s_number = self.number
        return 1

    cdef int _pcap(self) except -1:
        cdef const unsigned char *p
        cdef uint32_t sec, frac, caplen
        cdef Py_ssize_t end
        cdef bint big = self.big
        cdef int found
        while True:
            if self.pos + 16 > self.blen:
                self._refill(CHUNK)
                if self.blen < 16:
                    if self.blen:
                        self.reader._cut("the last record header is cut short", self.number)
                    return 0
            p = self.b + self.pos
            sec = _u32(p, big)
            frac = _u32(p + 4, big)
            caplen = _u32(p + 8, big)
            end = self.pos + 16 + <Py_ssize_t>caplen
            if end > self.blen:
                if caplen > MAX_RECORD:
                    self.reader._record_too_large(self.number, caplen)
                self._refill(max(CHUNK, <Py_ssize_t>caplen + 16))
                end = 16 + <Py_ssize_t>caplen
                if end > self.blen:
                    self.reader.packets = self.number
                    self.reader._cut("the last record is cut short", self.number)
                    return 0
            self.number += 1
            found = self._segment(self.pos + 16, end, self.linktype)
            self.pos = end
            if found:
                self.s_time = <double>sec + <double>frac / self.divisor
                self.s_time_obj = None
                return 1

    cdef int _pcapng(self) except -1:
        cdef const unsigned char *p
        cdef uint32_t btype, blocklen, ifid, caplen
        cdef uint64_t ticks
        cdef Py_ssize_t end, data, stop
        cdef Itf *itf
        cdef int found
        while True:
            if self.pos + 12 > self.blen:
                self._refill(CHUNK)
                if self.blen < 12:
                    if self.blen:
                        self.reader._cut("the last block header is cut short", self.number)
                    return 0
            p = self.b + self.pos
            btype = _u32(p, self.big)
            if btype == PCAPNG_SHB:
                if _u32(p + 8, False) == PCAPNG_BOM:
                    self.big = False
                elif _u32(p + 8, True) == PCAPNG_BOM:
                    self.big = True
                else:
                    self.reader._bad_bom(self._bytes(self.pos + 8, self.pos + 12))
                self.endian = ">" if self.big else "<"
                self.interfaces = []
                self.nitf = 0
            blocklen = _u32(p + 4, self.big)
            if blocklen < 12 or blocklen % 4:
                self.reader._block_length_impossible(self.number, blocklen)
            end = self.pos + <Py_ssize_t>blocklen
            if end > self.blen:
                if blocklen > MAX_RECORD:
                    self.reader._block_too_large(self.number, blocklen)
                self._refill(max(CHUNK, <Py_ssize_t>blocklen))
                end = blocklen
                if end > self.blen:
                    self.reader.packets = self.number
                    self.reader._cut("the last block is cut short", self.number)
                    return 0
                p = self.b
            if blocklen < 32 and blocklen < MIN_BLOCK.get(btype, 12):
                self.reader._block_length_impossible(self.number, blocklen)
            if btype == BT_EPB:
                ifid = _u32(p + 8, self.big)
                caplen = _u32(p + 20, self.big)
                data = self.pos + 28
                self.number += 1
                if ifid >= <uint32_t>self.nitf:
                    self.reader._bad_interface(ifid, self.number)
                    self.pos = end
                    continue
                itf = &self.itfs[ifid]
                stop = data + <Py_ssize_t>caplen
                if stop > end - 4:
                    self.reader._caplen_exceeds_block(self.number, caplen)
                ticks = (<uint64_t>_u32(p + 12, self.big) << 32) | _u32(p + 16, self.big)
                found = self._segment(data, stop, itf.linktype)
                self.pos = end
                if found:
                    self.s_time_obj = None
                    if itf.exact and ticks < <uint64_t>TWO53:
                        self.s_time = <double>ticks / itf.divisor + itf.offset
                    elif itf.exact and fastcap_exact_div(ticks, itf.idivisor, &self.s_time):
                        self.s_time += itf.offset
                    else:
                        pyitf = self.interfaces[ifid]
                        self.s_time_obj = ticks / pyitf.divisor + pyitf.offset
                    return 1
                continue
            if btype == BT_SPB or btype == BT_PB:
                self.number += 1
                found = 0
                for seg in self.reader._other_packet(
                    self._buf(), self.pos, end, btype, self.endian, self.interfaces, self.number
                ):
                    number, time, key, seq, flags, payload, missing = seg
                    self.s_number = number
                    self.s_time_obj = time
                    self.s_key = key
                    self.s_seq = seq
                    self.s_flags = flags
                    self.s_payload = payload
                    self.s_missing = missing
                    found = 1
                self.pos = end
                if found:
                    return 1
                continue
            if btype == BT_IDB:
                self._add_interface(self.reader._idb(self._buf(), self.pos, end, self.endian))
            elif btype == PCAPNG_SHB:
                self.reader._shb(self._buf(), self.pos, end, self.endian)
            elif btype == BT_DSB:
                self.reader._dsb(self._buf(), self.pos, end, self.endian)
            self.pos = end

    cdef int _add_interface(self, itf) except -1:
        cdef Itf *grown
        self.interfaces.append(itf)
        if self.nitf == self.itf_room:
            self.itf_room = self.itf_room * 2 + 4
            grown = <Itf *>PyMem_Realloc(self.itfs, self.itf_room * sizeof(Itf))
            if grown == NULL:
                raise MemoryError()
            self.itfs = grown
        cdef Itf *c = &self.itfs[self.nitf]
        self.nitf += 1
        c.linktype = itf.linktype
        divisor = itf.divisor
        offset = itf.offset
        # Python's int / int is correctly rounded; so is a double division when both are
        # exact doubles (ticks below 2**53 is checked per packet). Likewise float + int.
        c.exact = (
            type(divisor) is int and type(offset) is int
            and 0 < divisor and float(divisor) == divisor
            and -TWO53 < offset < TWO53
        )
        c.divisor = float(divisor) if c.exact else 1.0
        c.idivisor = divisor if c.exact and divisor < 2**64 else 0
        c.offset = float(offset) if c.exact else 0.0
        return 0


# -- TCP: the in-order case of TcpTracker._run -----------------------------------------------

cdef object ZERO = 0
cdef object S_DATA = "data"
cdef object S_INTERESTED = "interested"


cdef class _Tcp:
    cdef object tracker, live, syn_or_new, segment, fin_rst, new_sink, drop

    def __init__(self, tracker):
        self.tracker = tracker
        self.live = tracker.live
        if type(self.live) is not dict:
            raise TypeError("tracker.live must be a dict")
        self.syn_or_new = tracker._syn_or_new
        self.segment = tracker._segment
        self.fin_rst = tracker._fin_rst
        self.new_sink = tracker._sink
        self.drop = tracker._drop

    cdef int packet(
        self, object number, object time, object key, object seq, uint32_t seq_c, int flags,
        object payload, Py_ssize_t plen, object missing, long long missing_c,
    ) except -1:
        """One segment; 1 when the Python loop would ``continue`` (no finished-flow check).
        ``seq`` may be None: made from ``seq_c`` when a Python method needs it."""
        cdef PyObject *h = PyDict_GetItemWithError(self.live, key)
        cdef PyObject *pend
        cdef PyObject *args[6]
        cdef long long nxt, delivered
        if h == NULL or flags & 0x02:
            if seq is None:
                seq = PyLong_FromUnsignedLong(seq_c)
            half = self.syn_or_new(None if h == NULL else <object>h, key, number, time, seq, flags)
            if half is None:
                return 1
        else:
            half = <object>h
        if Py_TYPE(half) != HALF_TYPE:
            raise TypeError("TcpTracker.live holds something other than a Half")
        flow = _attr(half, H_FLOW, "flow")
        if Py_TYPE(flow) != FLOW_TYPE:
            raise TypeError("a Half's flow is not a TcpFlow")
        _set(flow, F_LAST_PACKET, number)
        _set(flow, F_LAST_TIME, time)
        if plen:
            pend = _get(half, H_PENDING)
            nxt = _attr(half, H_NXT, "nxt")
            if missing_c == 0 and pend == <PyObject *>None and nxt == seq_c:
                _set(half, H_NXT, PyLong_FromLongLong((<long long>seq_c + plen) & MASK32))
                delivered = _attr(half, H_DELIVERED, "delivered")
                _set(half, H_DELIVERED, PyLong_FromLongLong(delivered + plen))
                sink = _attr(flow, F_SINK, "sink")
                if sink is None:
                    sink = self.new_sink(flow)
                from_orig = _attr(half, H_FROM_ORIG, "from_orig")
                args[1] = <PyObject *>sink
                args[2] = <PyObject *>from_orig
                args[3] = <PyObject *>payload
                args[4] = <PyObject *>number
                args[5] = <PyObject *>time
                PyObject_VectorcallMethod(
                    S_DATA, &args[1], 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL
                )
                if not getattr(sink, S_INTERESTED) and self.drop(flow):
                    return 1
            else:
                if seq is None:
                    seq = PyLong_FromUnsignedLong(seq_c)
                self.segment(half, number, time, seq, payload, missing)
        elif missing_c:
            if seq is None:
                seq = PyLong_FromUnsignedLong(seq_c)
            self.segment(half, number, time, seq, payload, missing)
        if flags & 0x05:
            if seq is None:
                seq = PyLong_FromUnsignedLong(seq_c)
            self.fin_rst(half, number, time, seq, flags, plen + missing)
        return 0


def run(tracker, segments):
    """TcpTracker._run, with the in-order case compiled (see the module doc)."""
    cdef _Tcp tcp = _Tcp(tracker)
    cdef list finished = tracker._finished
    cdef Scanner sc
    cdef object number, time, key, payload, missing
    it = iter(segments)
    if type(it) is Scanner:
        sc = <Scanner>it
        try:
            while sc.advance():
                payload = sc.s_payload
                if tcp.packet(
                    PyLong_FromLongLong(sc.s_number), sc.time(), sc.s_key, None, sc.s_seq,
                    sc.s_flags, payload, PyBytes_GET_SIZE(payload),
                    PyLong_FromLongLong(sc.s_missing) if sc.s_missing else ZERO, sc.s_missing,
                ):
                    continue
                if finished:
                    for flow in finished:
                        yield flow
                    del finished[:]
        finally:
            sc.finish()
    else:
        for number, time, key, seq, flags, payload, missing in it:
            if tcp.packet(
                number, time, key, seq, seq, flags, payload, len(payload), missing, missing
            ):
                continue
            if finished:
                for flow in finished:
                    yield flow
                del finished[:]
    yield from tracker.close_all()
