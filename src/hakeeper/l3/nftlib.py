"""Load an nftables ruleset into a namespace from this process, through libnftables (Debian's
libnftables1, the library the `nft` command is built on), instead of starting `nft` in it.

libnftables opens its netlink socket when its context is made, so a context made inside
`netns.inside(ns)` talks to that namespace for good. Building a thousand routers costs a thousand
`nsenter nft -f` processes otherwise (seconds each on a loaded machine); without the library (not
installed) the command is used as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

from hakeeper.l3 import netns


@functools.cache
def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("nftables") or "libnftables.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    return lib


def load(namespace: str | None, ruleset: str) -> None:
    """`nft -f -` of `ruleset` inside `namespace` (None: this process's own); RuntimeError with
    nft's message on failure."""
    lib = _library()
    if lib is None:
        if namespace is None:
            netns.run(["nft", "-f", "-"], stdin=ruleset)
        else:
            netns.in_netns(namespace, ["nft", "-f", "-"], stdin=ruleset)
        return
    if namespace is None:
        ctx = lib.nft_ctx_new(0)
    else:
        with netns.inside(namespace):
            ctx = lib.nft_ctx_new(0)
    if not ctx:
        raise RuntimeError(f"{namespace}: libnftables could not make a context")
    try:
        lib.nft_ctx_buffer_error(ctx)
        lib.nft_ctx_buffer_output(ctx)
        if lib.nft_run_cmd_from_buffer(ctx, ruleset.encode()) != 0:
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace").strip()
            raise RuntimeError(f"nft in {namespace}: {err[:500]}")
    finally:
        lib.nft_ctx_free(ctx)
