"""The TRM code base's tensor names and shape readings, shared by the three token cores' reference layouts
(TRM, URM and HRM all grew from it: the same block, embedding and head names under different prefixes)."""

from __future__ import annotations

from arc_trm.model.layers import swiglu_width


def channel_names(ref: str, ours: str, attention: bool = True) -> dict[str, str]:
    """One block's tensors: reference prefix ``ref`` → arc-trm prefix ``ours``."""
    names = {f"{ref}.mlp.gate_up_proj.weight": f"{ours}.mlp.gate_up.weight",
             f"{ref}.mlp.down_proj.weight": f"{ours}.mlp.down.weight",
             f"{ref}.mlp.dwconv.weight": f"{ours}.mlp.dwconv.weight",
             f"{ref}.mlp.dwconv.bias": f"{ours}.mlp.dwconv.bias"}
    if attention:
        names.update({f"{ref}.self_attn.qkv_proj.weight": f"{ours}.attn.qkv.weight",
                      f"{ref}.self_attn.o_proj.weight": f"{ours}.attn.out.weight"})
    else:
        names.update({f"{ref}.mlp_t.gate_up_proj.weight": f"{ours}.mlp_t.gate_up.weight",
                      f"{ref}.mlp_t.down_proj.weight": f"{ours}.mlp_t.down.weight"})
    return names


def expansion(d: int, inter: int) -> float:
    return 4.0 if not inter or swiglu_width(d, 4.0) == inter else inter * 3 / (2 * d)


def gate_expansion(w: dict, d: int, key: str) -> float:
    gate = w.get(key)
    return expansion(d, int(gate.shape[0]) // 2 if gate is not None else 0)


def layer_count(w: dict, prefix: str) -> int:
    depth = prefix.count(".")
    return len({int(k.split(".")[depth]) for k in w if k.startswith(prefix)})


def has(w: dict, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in w)
