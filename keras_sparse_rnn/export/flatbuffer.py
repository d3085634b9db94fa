"""Reading and rewriting a `.tflite` flatbuffer with LiteRT's schema.

`tflite_ops` lists the ops of a file and counts its sparse-encoded tensors
(what `ExportReport.ops` and `sparse_tensors` hold); `shorten_tensor_names`
rewrites a converted file with its fused tensor names cut to 64 characters,
which in an unrolled RNN can otherwise outweigh the weights, and its
signature's input and output tensors named as in the signature (the
converter names them `serving_default_<name>:0` and `PartitionedCall:<i>`).
Both work on the bytes of the file and need `ai_edge_litert` (and
`flatbuffers` to write).
"""

import os

import numpy as np

NAME_LIMIT = 64


def tflite_ops(model_content):
    """Op names and sparse-tensor count of a `.tflite` flatbuffer.

    Args:
        model_content: the file's bytes, or a path to it.

    Returns:
        `(ops, sparse_tensors)`: a frozenset of op names over every subgraph
        (`"CUSTOM:<name>"` for custom and Flex ops) and the number of tensors
        stored with a sparsity encoding.
    """
    from ai_edge_litert import schema_py_generated as schema

    if isinstance(model_content, (str, os.PathLike)):
        with open(model_content, "rb") as f:
            model_content = f.read()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items()
             if not k.startswith("_")}
    flat = schema.Model.GetRootAs(bytearray(model_content), 0)
    codes = []
    for i in range(flat.OperatorCodesLength()):
        oc = flat.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            codes.append("CUSTOM:" + (oc.CustomCode() or b"").decode())
        else:
            codes.append(names.get(code, f"BUILTIN_{code}"))
    used, sparse = set(), 0
    for s in range(flat.SubgraphsLength()):
        sub = flat.Subgraphs(s)
        for o in range(sub.OperatorsLength()):
            used.add(codes[sub.Operators(o).OpcodeIndex()])
        for t in range(sub.TensorsLength()):
            if sub.Tensors(t).Sparsity() is not None:
                sparse += 1
    return frozenset(used), sparse


class _AlignedBuffer:
    """Packs a flatbuffer `Buffer` with its bytes aligned to 16, as the
    converter itself writes them (the generic object API aligns to 1)."""

    def __init__(self, buffer):
        self.buffer = buffer

    def Pack(self, builder):  # noqa: N802 (flatbuffers object API)
        from ai_edge_litert import schema_py_generated as schema

        data = self.buffer.data
        offset = None
        if data is not None:
            payload = np.asarray(data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), 16)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            offset = builder.EndVector()
        schema.BufferStart(builder)
        if offset is not None:
            schema.BufferAddData(builder, offset)
        schema.BufferAddOffset(builder, self.buffer.offset)
        schema.BufferAddSize(builder, self.buffer.size)
        return schema.BufferEnd(builder)


def _signature_tensors(flat):
    """`{(subgraph, tensor): signature name}` of the signatures' inputs and
    outputs."""
    names = {}
    for i in range(flat.SignatureDefsLength()):
        sig = flat.SignatureDefs(i)
        for j in range(sig.InputsLength()):
            names[(sig.SubgraphIndex(), sig.Inputs(j).TensorIndex())] = (
                sig.Inputs(j).Name())
        for j in range(sig.OutputsLength()):
            names.setdefault(
                (sig.SubgraphIndex(), sig.Outputs(j).TensorIndex()),
                sig.Outputs(j).Name())
    return names


def shorten_tensor_names(content, limit=NAME_LIMIT):
    """Cuts tensor names to `limit` characters.

    The converter names a tensor after every TensorFlow op fused into it
    (`a;b;c;...`); in an unrolled RNN those names repeat per time step and
    can outweigh the weights (measured: 1.38 MB of names in a 1.72 MB int8
    file). The signature's input and output tensors are named as in the
    signature, so that `get_input_details()` and `get_output_details()`
    give the names `get_signature_runner()` takes; the runtime does not use
    tensor names otherwise.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    flat = schema.Model.GetRootAs(bytearray(content), 0)
    signature = _signature_tensors(flat)
    model = schema.ModelT.InitFromObj(flat)
    if any(b.offset for b in model.buffers or []):
        return content  # buffers stored outside the flatbuffer (> 2 GB)
    changed = False
    for s, subgraph in enumerate(model.subgraphs or []):
        for t, tensor in enumerate(subgraph.tensors or []):
            name = tensor.name
            if isinstance(name, str):
                name = name.encode()
            if (s, t) in signature:
                if name != signature[(s, t)]:
                    tensor.name = signature[(s, t)]
                    changed = True
            elif name and len(name) > limit:
                tensor.name = name.split(b";")[0][:limit]
                changed = True
    if not changed:
        return content
    model.buffers = [_AlignedBuffer(b) for b in model.buffers]
    builder = flatbuffers.Builder(len(content) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
