"""mobilekd.compress: make a trained model smaller before export.

- quantize.py    int8 per target runtime: PT2E/XNNPACKQuantizer (ExecuTorch), ONNX Runtime
                 quantize_static/dynamic, coremltools weight compression; their option models.
- sensitivity.py per-layer int8 sensitivity and the keep-float fallback.
- prune.py       unstructured (torch.nn.utils.prune) and structured (Torch-Pruning) pruning.
- macs.py        MACs (torch.utils.flop_counter) and parameter counts.

Nothing is imported here: config.py imports the option models from quantize.py, which must not
pull in torch, executorch or onnxruntime. Import the submodule you need.
"""
