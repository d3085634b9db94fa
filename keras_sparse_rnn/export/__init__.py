"""Export of sparse recurrent models to LiteRT (TFLite)."""

from keras_sparse_rnn.export.streaming import StreamingInfo, streaming_model
from keras_sparse_rnn.export.tflite import (
    ExportError,
    ExportReport,
    export_tflite,
    tflite_ops,
)

__all__ = [
    "ExportError",
    "ExportReport",
    "StreamingInfo",
    "export_tflite",
    "streaming_model",
    "tflite_ops",
]
