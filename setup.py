from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="keras-sparse-rnn",
    version="0.1.0",
    description="Sparse-from-scratch training of recurrent networks (LSTM, RHN, GRU) for Keras 3",
    long_description=long_description,
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_sparse_rnn", "keras_sparse_rnn.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow==2.21.*",
        "keras>=3.15,<3.16",
        "tensorflow-text==2.21.*",
        "numpy",
        # The LiteRT interpreter and flatbuffer schema: export_tflite verifies
        # and inspects its files with them.
        "ai-edge-litert",
    ],
    extras_require={
        "test": ["pytest", "tensorboard==2.21.*"],
        "baselines": ["tensorflow-model-optimization==0.8.*", "tf-keras==2.21.*"],
        "bench": ["matplotlib"],
    },
    license="Apache-2.0",
)
