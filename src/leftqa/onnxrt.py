"""ONNX Runtime in one place: the inference session every model here runs in, and the steps that turn an exported
fp32 model into the files shipped or cached (BERT fusion, int8 dynamic quantisation), each written atomically.

onnxruntime and onnx are imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def onnx_session(path: Path, threads: int) -> Any:
    """An `onnxruntime.InferenceSession` of the model file `path` on the CPU, `threads` intra-op threads (0: all)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(threads, 0)
    opts.inter_op_num_threads = 1
    # Spinning worker threads burn the other core between ops; with 2 cores shared by a server that costs more
    # than it saves (measured: 2-thread queries 2-3x slower with spinning when the machine is busy).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@contextmanager
def quiet_export() -> Iterator[None]:
    """Silence the exporter's, optimiser's and quantiser's warnings and root-logger advice: nothing a user can act
    on (the tracer warns about constant folding of shapes; exports are checked against PyTorch)."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def part_path(dest: Path) -> Path:
    """The temporary file beside `dest` that is written first and then renamed over it."""
    return dest.with_name(f"{dest.name}.part-{os.getpid()}")


def fuse_bert(raw: Path, dest: Path, num_heads: int, hidden_size: int) -> None:
    """ONNX Runtime's BERT fusion (attention, layer norm, GELU into single ops) of the exported `raw` into `dest`,
    atomically; `raw` is deleted."""
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=1)
    tmp = part_path(dest)
    fused.save_model_to_file(str(tmp))
    raw.unlink()
    os.replace(tmp, dest)


def quantize_int8(fp32: Path, dest: Path) -> None:
    """Dynamic int8 quantisation of the weights of the fp32 model `fp32` into `dest`, atomically."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = part_path(dest)
    quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    os.replace(tmp, dest)
