"""`LoaderOptions`: the options every text-classification loader takes.

`load_imdb`, `load_sst2`, `load_sst5`, `load_csv` and `load_labeled_lines`
keep their own keyword arguments (their defaults differ per dataset); each
gathers the shared ones into one `LoaderOptions`, checked once when it is
made, before any file is read, and hands that object on.
"""

import dataclasses

from keras_sparse_rnn.datasets import pipeline
from keras_sparse_rnn.datasets import readers
from keras_sparse_rnn import validation as v


@dataclasses.dataclass(frozen=True)
class LoaderOptions:
    """How a loader reads, splits, vectorizes and batches a dataset.

    Attributes:
        max_tokens: vocabulary size including padding (0) and OOV (1), an int
            >= 3, or None for all training words.
        sequence_length: sequences are truncated / padded to this length.
        batch_size: examples per batch.
        seed: seed of the validation split and of the training shuffle.
        validation_split: fraction of the training examples held out for
            validation, in [0, 1).
        bucket_boundaries: None, or increasing lengths (see `make_dataset`).
        drop_remainder: drop the last incomplete batch of each split.
        padding, truncating: `"post"` or `"pre"` (see `TextVectorizer`).
        lowercase, split_punctuation: see `standardize`.
        encoding, errors: how the files are decoded (as `bytes.decode`).

    Raises:
        ValueError: an option of the wrong type or out of its range.
    """

    max_tokens: object = 20000
    sequence_length: int = 200
    batch_size: int = 32
    seed: int = 0
    validation_split: float = 0.0
    bucket_boundaries: object = None
    drop_remainder: bool = False
    padding: str = "post"
    truncating: str = "post"
    lowercase: bool = True
    split_punctuation: bool = True
    encoding: str = "utf-8"
    errors: str = "strict"

    def __post_init__(self):
        v.check_int(self.max_tokens, "max_tokens", minimum=3, allow_none=True)
        v.check_int(self.sequence_length, "sequence_length", minimum=1)
        v.check_int(self.batch_size, "batch_size", minimum=1)
        v.check_int(self.seed, "seed")
        v.check_fraction(self.validation_split, "validation_split")
        v.check_bool(self.drop_remainder, "drop_remainder")
        boundaries = pipeline.check_bucket_boundaries(
            self.bucket_boundaries, self.sequence_length
        )
        if boundaries is not None:
            # Frozen: a tuple, so that the caller's list cannot change it.
            object.__setattr__(self, "bucket_boundaries", tuple(boundaries))
        v.check_choice(self.padding, "padding", ("post", "pre"))
        v.check_choice(self.truncating, "truncating", ("post", "pre"))
        pipeline.check_bucket_padding(self.bucket_boundaries, self.padding)
        v.check_bool(self.lowercase, "lowercase")
        v.check_bool(self.split_punctuation, "split_punctuation")
        readers.check_decoding(self.encoding, self.errors)

    @classmethod
    def from_arguments(cls, arguments):
        """The options among a loader's arguments (its `locals()`), checked.

        A loader without one of the options (the SST ones have no
        `validation_split`) gets its default.
        """
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(**{name: arguments[name] for name in names if name in arguments})

    @property
    def standardization(self):
        """The keyword arguments of `standardize` (HTML breaks always go)."""
        return dict(
            lowercase=self.lowercase,
            strip_html=True,
            split_punctuation=self.split_punctuation,
        )
