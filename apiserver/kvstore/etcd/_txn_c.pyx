# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled twin of ``_txn_py.py``: Txn branches encoded to protobuf bytes in one buffer.

Same contract and same bytes as the pure twin (tested against it and against upb). Puts with a
``str`` key, a ``bytes`` value and an ``int`` lease (every put the sync stores send) are written
here, each run of them into one ``bytes``; any other operation is handed to the pure twin, so
deletes and unusual values behave exactly as there.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsUnsignedLongLongMask
from libc.string cimport memcpy

from apiserver.kvstore._backend import MAX_TXN_OPS, KVStoreError, Put
from apiserver.kvstore.etcd import _txn_py


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL

cdef enum:
    TAG_OP_PUT = 0x12  # RequestOp.request_put = 2
    TAG_KEY = 0x0a  # PutRequest.key = 1
    TAG_VALUE = 0x12  # PutRequest.value = 2
    TAG_LEASE = 0x18  # PutRequest.lease = 3, varint


cdef inline Py_ssize_t varint_size(unsigned long long n) noexcept:
    cdef Py_ssize_t size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


cdef inline char* put_varint(char* out, unsigned long long n) noexcept:
    while n >= 0x80:
        out[0] = <char>((n & 0x7F) | 0x80)
        out += 1
        n >>= 7
    out[0] = <char>n
    return out + 1


cdef inline Py_ssize_t field_size(Py_ssize_t length) noexcept:
    # proto3 leaves an empty field out
    return 1 + varint_size(length) + length if length else 0


cdef inline bint is_plain_put(object op) noexcept:
    return (type(op) is Put and type((<object>op).key) is str and type((<object>op).value) is bytes
            and type((<object>op).lease) is int)


cdef bytes encode_puts(bytes tag, list ops, Py_ssize_t start, Py_ssize_t end):
    """The RequestOp fields of the plain puts ``ops[start:end]``, in one bytes object."""
    cdef Py_ssize_t i, key_len, value_len, put_len, op_len, total = 0
    cdef Py_ssize_t tag_len = PyBytes_GET_SIZE(tag)
    cdef unsigned long long lease
    cdef const char* key
    cdef object op, value
    for i in range(start, end):
        op = ops[i]
        PyUnicode_AsUTF8AndSize(op.key, &key_len)
        lease = PyLong_AsUnsignedLongLongMask(op.lease)
        put_len = (field_size(key_len) + field_size(PyBytes_GET_SIZE(op.value))
                   + (1 + varint_size(lease) if lease else 0))
        op_len = 1 + varint_size(put_len) + put_len
        total += tag_len + varint_size(op_len) + op_len
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* p = PyBytes_AS_STRING(out)
    for i in range(start, end):
        op = ops[i]
        key = PyUnicode_AsUTF8AndSize(op.key, &key_len)
        value = op.value
        value_len = PyBytes_GET_SIZE(value)
        lease = PyLong_AsUnsignedLongLongMask(op.lease)
        put_len = field_size(key_len) + field_size(value_len) + (1 + varint_size(lease) if lease else 0)
        memcpy(p, PyBytes_AS_STRING(tag), tag_len)
        p = put_varint(p + tag_len, 1 + varint_size(put_len) + put_len)
        p[0] = TAG_OP_PUT
        p = put_varint(p + 1, put_len)
        if key_len:
            p[0] = TAG_KEY
            p = put_varint(p + 1, key_len)
            memcpy(p, key, key_len)
            p += key_len
        if value_len:
            p[0] = TAG_VALUE
            p = put_varint(p + 1, value_len)
            memcpy(p, PyBytes_AS_STRING(value), value_len)
            p += value_len
        if lease:
            p[0] = TAG_LEASE
            p = put_varint(p + 1, lease)
    return out


def encode_branch(bytes tag, ops, list parts):
    """Append the ``RequestOp`` fields of ``ops`` (field ``tag`` of ``TxnRequest``) to ``parts``."""
    cdef list items = ops if type(ops) is list else list(ops)
    cdef Py_ssize_t n = len(items), i = 0, run
    if n > MAX_TXN_OPS:
        raise KVStoreError(f"a txn branch may hold at most {MAX_TXN_OPS} operations, got {n}")
    while i < n:
        run = i
        while run < n and is_plain_put(items[run]):
            run += 1
        if run > i:
            parts.append(encode_puts(tag, items, i, run))
            i = run
        else:
            _txn_py.encode_branch(tag, [items[i]], parts)
            i += 1
