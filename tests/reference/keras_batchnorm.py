"""Keras's BatchNormalization on inputs written by tests/layers/batch_normalization_keras_test.cpp.

usage: keras_batchnorm.py DIR SHAPE AXIS MOMENTUM EPSILON CENTER SCALE
SHAPE is the batch shape as comma-separated dimensions (e.g. 32,300 or 3,5,6,4), AXIS Keras's.
Reads DIR/{x,dy,gamma,beta,moving_mean,moving_variance}.f32 (raw little-endian float32, x and dy
in SHAPE's row-major order) and writes DIR/{y,dx,dgamma,dbeta,moving_mean_out,
moving_variance_out,y_inference}.f32: a training call with its gradients for the upstream
gradient dy, the moving statistics after it, then an inference call on the same x.
Exits 77 when TensorFlow cannot be imported (it is an optional PyPI package, installed by
scripts/setup_python_checks.sh), so the caller can skip.
"""
import sys

from keras_support import Files, tf  # exits 77 where TensorFlow is absent


def main():
    files = Files(sys.argv[1])
    shape = tuple(int(d) for d in sys.argv[2].split(","))
    axis, momentum, epsilon = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    center, scale = sys.argv[6] == "true", sys.argv[7] == "true"
    channels = shape[axis]

    read, write = files.read, files.write
    layer = tf.keras.layers.BatchNormalization(axis=axis, momentum=momentum, epsilon=epsilon, center=center,
                                               scale=scale)
    layer.build(shape)
    weights = ([read("gamma", (channels,))] if scale else []) + ([read("beta", (channels,))] if center else [])
    layer.set_weights(weights + [read("moving_mean", (channels,)), read("moving_variance", (channels,))])
    x = tf.constant(read("x", shape))
    dy = tf.constant(read("dy", shape))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    parameters = ([layer.gamma] if scale else []) + ([layer.beta] if center else [])
    gradients = tape.gradient(y, [x] + parameters, output_gradients=dy)
    write("y", y)
    write("dx", gradients[0])
    if scale:
        write("dgamma", gradients[1])
    if center:
        write("dbeta", gradients[-1])
    write("moving_mean_out", layer.moving_mean)
    write("moving_variance_out", layer.moving_variance)
    write("y_inference", layer(x, training=False))


main()
