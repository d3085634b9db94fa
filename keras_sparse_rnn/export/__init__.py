"""Export of sparse recurrent models to LiteRT (TFLite)."""

from keras_sparse_rnn.export.choice import Candidate
from keras_sparse_rnn.export.flatbuffer import tflite_ops
from keras_sparse_rnn.export.report import ExportError, ExportReport
from keras_sparse_rnn.export.streaming import StreamingInfo, streaming_model
from keras_sparse_rnn.export.tflite import export_tflite

__all__ = [
    "Candidate",
    "ExportError",
    "ExportReport",
    "StreamingInfo",
    "export_tflite",
    "streaming_model",
    "tflite_ops",
]
