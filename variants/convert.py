"""Data-free rewrites of a base graph: float16 weights and activations, a symbolic batch dimension."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.recipes import ConvertRecipe


class GraphError(ValueError):
    """The base graph cannot be rewritten as asked."""


def convert_into(base_path: Path, out: Path, recipe: ConvertRecipe) -> list[str]:
    """Rewrite ``base_path`` into ``out`` by ``recipe``; returns the nodes kept fp32 (none)."""
    import onnx

    model = onnx.load(str(base_path))
    if recipe.dynamic_batch:
        # U²-Net computes every Resize target from Shape(...) at run time (no
        # Reshape with a baked-in batch), so a symbolic first dimension is enough.
        for value in (*model.graph.input, *model.graph.output):
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
        del model.graph.value_info[:]  # stale batch-1 shapes; onnxruntime infers them again
    if recipe.fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(model, keep_io_types=recipe.keep_io_types)
        sort_nodes(model.graph)  # the converter appends its input casts after their consumers
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return []


def sort_nodes(graph: Any) -> None:
    """Reorder ``graph.node`` topologically (stable: keeps the original order where it can)."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(name in known for name in node.input):
                ordered.append(node)
                known.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise GraphError(f"the graph has a cycle or a dangling input at {rest[0].name}")
        pending = rest
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
