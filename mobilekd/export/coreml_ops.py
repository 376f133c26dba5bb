"""Composite translations for small PyTorch ops that coremltools 9's torch frontend lacks, written
with coremltools' own op registry (`register_torch_op`) and MIL builder, the extension point its
docs give. Each is a one-line composition of existing MIL ops; none is a kernel."""

from __future__ import annotations

_REGISTERED = False


def register_composite_ops() -> list[str]:
    """Register the translations once per process; returns the op names this call added."""
    global _REGISTERED
    if _REGISTERED:
        return []
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch.ops import _get_inputs
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY, register_torch_op

    added: list[str] = []

    def fill(value: float):  # type: ignore[no-untyped-def]
        def convert(context, node) -> None:  # type: ignore[no-untyped-def]
            # x.new_ones(size) / x.new_zeros(size): a tensor of `size` filled with `value`, as
            # coremltools' own new_zeros does (mb.fill; a list of dynamic sizes is concatenated).
            shape = _get_inputs(context, node)[1]
            if isinstance(shape, list):
                shape = mb.concat(values=shape, axis=0)
            context.add(mb.fill(shape=shape, value=value, name=node.name))
        return convert

    for name, value in (("new_ones", 1.0), ("new_zeros", 0.0)):
        if name not in _TORCH_OPS_REGISTRY:
            convert = fill(value)
            convert.__name__ = name
            register_torch_op(convert)
            added.append(name)
    # torch.export records `mask_a & mask_b` (transformers' attention masks) as the Python operator
    # __and__, a kind coremltools' fx frontend looks up verbatim, while its own translation is
    # registered as "and" (bitwise_and: logical_and on booleans). The name ends in "_", which
    # register_torch_op refuses, so the existing translation is aliased through the registry.
    from coremltools.converters.mil.frontend.torch import ops as ct_ops

    if "__and__" not in _TORCH_OPS_REGISTRY:
        _TORCH_OPS_REGISTRY.set_func_by_name(ct_ops.bitwise_and, "__and__")
        added.append("__and__")
    _REGISTERED = True
    return added
