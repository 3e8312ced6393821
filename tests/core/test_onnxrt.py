"""leftqa.onnxrt: the one ONNX Runtime session setup, and the atomic int8 quantisation step of the exports."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest

from leftqa.onnxrt import onnx_session, quantize_int8, quiet_export


def _matmul_model(path: Path) -> np.ndarray:
    """A one-MatMul fp32 model `y = x @ W` (W 64x32, big enough for the quantiser to quantise); returns W."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
        initializer=[numpy_helper.from_array(w, "W")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_session_runs_on_the_cpu_with_the_shared_options(tmp_path: Path, threads: int) -> None:
    w = _matmul_model(tmp_path / "m.onnx")
    session = onnx_session(tmp_path / "m.onnx", threads)
    opts = session.get_session_options()
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level) == (threads, 1, 3)
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert session.get_providers() == ["CPUExecutionProvider"]
    x = np.ones((2, 64), dtype=np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ w, rtol=1e-5)


def test_negative_threads_mean_every_core(tmp_path: Path) -> None:
    _matmul_model(tmp_path / "m.onnx")
    assert onnx_session(tmp_path / "m.onnx", -3).get_session_options().intra_op_num_threads == 0


def test_quantize_int8_writes_the_destination_and_no_temporary_file(tmp_path: Path) -> None:
    w = _matmul_model(tmp_path / "m.onnx")
    with quiet_export():
        quantize_int8(tmp_path / "m.onnx", tmp_path / "m-int8.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-int8.onnx", "m.onnx"]
    assert (tmp_path / "m-int8.onnx").stat().st_size < (tmp_path / "m.onnx").stat().st_size
    x = np.ones((1, 64), dtype=np.float32)
    y = onnx_session(tmp_path / "m-int8.onnx", 1).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, x @ w, atol=0.5)  # int8 weights: close, not equal


def test_quiet_export_silences_warnings_and_logging_and_restores_them() -> None:
    with quiet_export(), warnings.catch_warnings(record=True) as seen:
        warnings.warn("constant folding", UserWarning)
        assert logging.root.manager.disable == logging.WARNING
    assert seen == []
    assert logging.root.manager.disable == logging.NOTSET
    with pytest.raises(RuntimeError), quiet_export():
        raise RuntimeError("export failed")
    assert logging.root.manager.disable == logging.NOTSET
