# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled twin of ``endpoints._plain_endpoint_entries``: the usual CiliumEndpoint's IP entries.

Same contract as the pure twin: the same ``{ip: value}`` dict, or ``None`` whenever anything is
unusual (the checked pure path then gives the result or the precise error). Addresses are parsed
and printed with the same C library calls Python's ``socket.inet_pton``/``inet_ntop`` make; the
rare forms the pure code prints itself (IPv4-mapped and zero-prefixed IPv6) are handed to it.
Tested against the pure twin with the same random objects.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy, strlen

from apiserver.convert._endpoint_plain import entry_tail, plain_networking
from apiserver.convert._ip import net_ip_string


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL
    bint PyUnicode_IS_ASCII(object unicode)


cdef extern from "<arpa/inet.h>" nogil:
    int AF_INET
    int AF_INET6
    int inet_pton(int af, const char* src, void* dst)
    const char* inet_ntop(int af, const void* src, char* dst, int size)


cdef enum:
    PLAIN_NAME_MAX = 253  # a DNS subdomain
    MAX_ADDR_TEXT = 64  # longest address text the pure twin parses
    IP6_TEXT = 46  # INET6_ADDRSTRLEN

cdef object INT64_MIN = -(1 << 63), INT64_MAX = (1 << 63) - 1
cdef bytes IP_HEAD = b'{"IP":"'


cdef inline bint plain_name(str s, bint required) noexcept:
    """Only ``[-.0-9A-Za-z_]``, at most 253 of them (and at least one if ``required``)."""
    cdef Py_ssize_t n, i
    cdef const char* p
    cdef char c
    if not PyUnicode_IS_ASCII(s):
        return False
    try:
        p = PyUnicode_AsUTF8AndSize(s, &n)
    except Exception:
        return False
    if n > PLAIN_NAME_MAX or (required and n == 0):
        return False
    for i in range(n):
        c = p[i]
        if not (c == 45 or c == 46 or c == 95 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122):
            return False
    return True


cdef object int64_field(object parent, str field):
    """The pure twin's reading of ``identity.id`` / ``encryption.key``: None when not plain."""
    cdef object value
    if parent is None:
        return 0
    if type(parent) is not dict:
        return None
    value = (<dict>parent).get(field, 0)
    if value is None:
        return 0
    if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
        return None
    return value


cdef object ip_key(str text, char* buf):
    """``net_ip_string(text)`` (None for an invalid address); ASCII text only, of any length."""
    cdef Py_ssize_t n
    cdef const char* p
    cdef unsigned char raw[16]
    cdef int i
    p = PyUnicode_AsUTF8AndSize(text, &n)
    if n > MAX_ADDR_TEXT or <Py_ssize_t>strlen(p) != n:
        return net_ip_string(text)
    if memchr_colon(p, n):
        if inet_pton(AF_INET6, p, raw) != 1:
            return None
        for i in range(10):
            if raw[i]:
                break
        else:
            return net_ip_string(text)  # zero-prefixed or IPv4-mapped: printed by the pure code
        if inet_ntop(AF_INET6, raw, buf, IP6_TEXT) == NULL:
            return net_ip_string(text)
        return buf[:strlen(buf)].decode("ascii")
    if inet_pton(AF_INET, p, raw) != 1:
        return None
    return text  # a strict dotted quad is its own canonical form


cdef inline bint memchr_colon(const char* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] == 58:
            return True
    return False


cdef bytes entry_value(str ip, bytes tail):
    """``b'{"IP":"' + ip.encode() + tail`` in one allocation (``ip`` is ASCII)."""
    cdef Py_ssize_t ip_len, tail_len = len(tail)
    cdef const char* ip_p = PyUnicode_AsUTF8AndSize(ip, &ip_len)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 7 + ip_len + tail_len)
    cdef char* p = PyBytes_AS_STRING(out)
    memcpy(p, PyBytes_AS_STRING(IP_HEAD), 7)
    memcpy(p + 7, ip_p, ip_len)
    memcpy(p + 7 + ip_len, PyBytes_AS_STRING(tail), tail_len)
    return out


def plain_endpoint_entries(obj):
    """See the module docstring."""
    cdef dict meta, status, out
    cdef object name, namespace, account, networking, node, addresses, identity_id, key, text, ip, found
    cdef char buf[IP6_TEXT]
    cdef str field
    if type(obj) is not dict:
        return None
    meta_obj, status_obj = (<dict>obj).get("metadata"), (<dict>obj).get("status")
    if type(meta_obj) is not dict or type(status_obj) is not dict:
        return None
    meta, status = meta_obj, status_obj
    name, namespace = meta.get("name"), meta.get("namespace")
    account, networking = status.get("service-account"), status.get("networking")
    if account is None:
        account = ""
    if (type(name) is not str or type(namespace) is not str or type(account) is not str
            or not plain_name(name, True) or not plain_name(namespace, True) or not plain_name(account, False)):
        return None
    identity_id = int64_field(status.get("identity"), "id")
    key = int64_field(status.get("encryption"), "key")
    if identity_id is None or key is None:
        return None
    found = plain_networking(networking)
    if type(found) is not tuple:
        return found
    node, addresses = found
    cdef bytes tail = entry_tail(node, identity_id, key, namespace, name, account)
    out = {}
    for pair in <list>addresses:
        if type(pair) is not dict:
            return None
        for field in ("ipv4", "ipv6"):
            text = (<dict>pair).get(field)
            if text is None:
                continue
            if type(text) is not str:
                return None
            if not text:
                continue
            if PyUnicode_IS_ASCII(text):
                ip = ip_key(text, buf)
            else:
                ip = net_ip_string(text)
            if ip is None:
                return None
            out[ip] = entry_value(ip, tail)
    return out
