from collections.abc import Sequence

from apiserver.kvstore._backend import Op

def encode_branch(tag: bytes, ops: Sequence[Op], parts: list[bytes]) -> None: ...
