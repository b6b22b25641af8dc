"""Keras's LayerNormalization and GroupNormalization on inputs written by
tests/layers/sample_normalization_keras_test.cpp.

usage: keras_sample_normalization.py DIR KIND SHAPE AXIS GROUPS EPSILON CENTER SCALE
KIND is layer or group; SHAPE the batch shape as comma-separated dimensions; AXIS Keras's axis (a
comma-separated list for layer, one axis for group); GROUPS only for group. Reads
DIR/{x,dy,gamma,beta}.f32 (raw little-endian float32; x and dy in SHAPE's row-major order, gamma
and beta flat in the order of Keras's parameter shape) and writes DIR/{y,dx,dgamma,dbeta}.f32: a
call with its gradients for the upstream gradient dy. Exits 77 when TensorFlow cannot be imported
(an optional PyPI package, installed by scripts/setup_python_checks.sh).
"""
import sys

from keras_support import Files, tf  # exits 77 where TensorFlow is absent


def main():
    files, kind = Files(sys.argv[1]), sys.argv[2]
    shape = tuple(int(d) for d in sys.argv[3].split(","))
    axes = [int(a) for a in sys.argv[4].split(",")]
    groups, epsilon = int(sys.argv[5]), float(sys.argv[6])
    center, scale = sys.argv[7] == "true", sys.argv[8] == "true"

    read, write = files.read, files.write
    if kind == "layer":
        layer = tf.keras.layers.LayerNormalization(axis=axes, epsilon=epsilon, center=center, scale=scale)
    else:
        layer = tf.keras.layers.GroupNormalization(groups=groups, axis=axes[0], epsilon=epsilon, center=center,
                                                   scale=scale)
    layer.build(shape)
    parameters = ([layer.gamma] if scale else []) + ([layer.beta] if center else [])
    names = (["gamma"] if scale else []) + (["beta"] if center else [])
    layer.set_weights([read(name, tuple(p.shape)) for name, p in zip(names, parameters)])
    x = tf.constant(read("x", shape))
    dy = tf.constant(read("dy", shape))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    gradients = tape.gradient(y, [x] + parameters, output_gradients=dy)
    write("y", y)
    write("dx", gradients[0])
    for name, gradient in zip(names, gradients[1:]):
        write("d" + name, gradient)


main()
