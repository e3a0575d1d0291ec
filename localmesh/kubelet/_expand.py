"""Kubelet's ``$(VAR)`` expansion of env values, command and args (pure).

Rules (k8s.io/kubernetes ``third_party/forked/golang/expansion/expand.go``): ``$(NAME)`` becomes the
value of NAME when NAME is defined, and stays as written when it is not; ``$$`` is one literal ``$``;
a ``$`` followed by anything else, or an unclosed ``$(``, is copied unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping


def expand(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$" or i + 1 == n:
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2:close]
                out.append(env.get(name, f"$({name})"))
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)
