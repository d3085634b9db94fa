"""Command line: export a saved Keras model to a LiteRT (TFLite) file.

    python -m keras_sparse_rnn.export MODEL.keras OUT.tflite \\
        --sequence-length 35 [--quantization float16|dynamic_int8|int8 \\
        --representative-data SAMPLES.npy] [--streaming] [--unroll auto] \\
        [--prefer balanced|size|accuracy] [--allow-builtin-kernels] \\
        [--verbose]

Prints the export report; exits with status 1 and a one-line error (no
traceback) if the model cannot be exported.
"""

import argparse
import os
import sys


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m keras_sparse_rnn.export",
        description="Export a saved Keras model (.keras) to a TFLite file of "
        "builtin ops, verify it in LiteRT and print the report.",
    )
    parser.add_argument("model", help="the saved model (.keras)")
    parser.add_argument("output", help="the .tflite file to write")
    parser.add_argument("--sequence-length", type=int, default=None,
                        help="static number of time steps (needed when the "
                        "model's is unknown, except with --streaming)")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="static batch size (default 1)")
    parser.add_argument("--unroll", choices=["auto", "true", "false"],
                        default="auto",
                        help="time loop form: WHILE loop (false), unrolled "
                        "(true) or auto (default)")
    parser.add_argument("--quantization",
                        choices=["float16", "dynamic_int8", "int8"],
                        default=None, help="default: none (float32)")
    parser.add_argument("--representative-data", default=None,
                        help="a .npy file of input samples (samples, time, "
                        "...) to calibrate int8")
    parser.add_argument("--no-sparse-encoding", action="store_true",
                        help="store the sparse weights dense")
    parser.add_argument("--streaming", action="store_true",
                        help="export a one-time-step model with the "
                        "recurrent states as inputs and outputs")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the LiteRT-vs-Keras check")
    parser.add_argument("--prefer", choices=["balanced", "size", "accuracy"],
                        default="balanced",
                        help="which candidate file to keep: the smallest "
                        "close to the best error (balanced, default), the "
                        "smallest, or the most accurate")
    parser.add_argument("--allow-builtin-kernels", action="store_true",
                        help="also keep a file that LiteRT's default XNNPACK "
                        "delegate cannot prepare (require_xnnpack=False)")
    parser.add_argument("--verbose", action="store_true",
                        help="say what the exporter does as it does it")
    return parser.parse_args(argv)


def main(argv=None):
    args = _parse(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    import keras_sparse_rnn  # noqa: F401  (registers the sparse layers)
    from keras_sparse_rnn.export import export_tflite

    if not os.path.isfile(args.model):
        print(f"error: model file {args.model!r} does not exist",
              file=sys.stderr)
        return 1
    representative = None
    if args.representative_data is not None:
        try:
            representative = np.load(args.representative_data)
        except (OSError, ValueError) as e:
            print(f"error: cannot read --representative-data "
                  f"{args.representative_data!r} as a .npy array: {e}",
                  file=sys.stderr)
            return 1
    try:
        model = keras.saving.load_model(args.model)
    except Exception as e:  # any unreadable or foreign file: one line, no traceback
        print(f"error: cannot load the model {args.model!r}: "
              f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    try:
        report = export_tflite(
            model,
            args.output,
            sequence_length=args.sequence_length,
            batch_size=args.batch_size,
            unroll={"auto": "auto", "true": True, "false": False}[args.unroll],
            quantization=args.quantization,
            representative_data=representative,
            sparse_encoding=not args.no_sparse_encoding,
            streaming=args.streaming,
            verify=not args.no_verify,
            prefer=args.prefer,
            require_xnnpack=not args.allow_builtin_kernels,
            verbose=args.verbose,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        log = getattr(e, "converter_log", "")
        if log:
            log_path = f"{args.output}.convert.log"
            with open(log_path, "w") as f:
                f.write(log)
            print(f"the converter's whole output: {log_path}", file=sys.stderr)
        return 1
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
