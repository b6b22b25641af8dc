"""What the Keras reference scripts share: TensorFlow imported quietly on one thread, and their raw
float32 files (DIR/NAME.f32, little-endian, row-major).

Imported first by keras_batchnorm.py and keras_sample_normalization.py; exits 77 when TensorFlow
cannot be imported (an optional PyPI package, installed by scripts/setup_python_checks.sh), so
the calling test can skip.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
try:
    import numpy as np
    import tensorflow as tf
except Exception as error:  # noqa: BLE001 - any import failure means "not available here"
    print(f"tensorflow not available: {error}", file=sys.stderr)
    sys.exit(77)

tf.config.threading.set_intra_op_parallelism_threads(1)


class Files:
    """DIR/NAME.f32 files of one call."""

    def __init__(self, directory):
        self.directory = directory

    def read(self, name, shape):
        return np.fromfile(f"{self.directory}/{name}.f32", dtype="<f4").reshape(shape)

    def write(self, name, value):
        np.asarray(value, dtype="<f4").tofile(f"{self.directory}/{name}.f32")
