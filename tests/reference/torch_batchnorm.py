"""PyTorch's batch_norm on inputs written by tests/kernels/batchnorm_torch_test.cpp.

usage: torch_batchnorm.py DIR LAYOUT N C H W EPS MOMENTUM
Reads DIR/{x,dy,gamma,beta,running_mean,running_var}.f32 (raw little-endian float32; x and dy in
LAYOUT order) and writes DIR/{y,dx,dgamma,dbeta,running_mean_out,running_var_out}.f32.
Exits 77 when torch cannot be imported, so the caller can skip.
"""
import sys

try:
    import numpy as np
    import torch
except Exception as error:  # noqa: BLE001 - any import failure means "not available here"
    print(f"torch not available: {error}", file=sys.stderr)
    sys.exit(77)


def main():
    directory, layout = sys.argv[1], sys.argv[2]
    n, c, h, w = (int(v) for v in sys.argv[3:7])
    eps, momentum = float(sys.argv[7]), float(sys.argv[8])
    torch.set_num_threads(1)

    def read(name, shape):
        return torch.from_numpy(np.fromfile(f"{directory}/{name}.f32", dtype="<f4").reshape(shape).copy())

    def write(name, tensor):
        tensor.detach().contiguous().numpy().astype("<f4").tofile(f"{directory}/{name}.f32")

    shape = {"NC": (n, c), "NCHW": (n, c, h, w), "NHWC": (n, h, w, c)}[layout]
    x = read("x", shape)
    dy = read("dy", shape)
    if layout == "NHWC":  # torch's batch_norm takes channels in dimension 1
        x, dy = x.permute(0, 3, 1, 2), dy.permute(0, 3, 1, 2)
    x = x.clone().requires_grad_(True)
    gamma = read("gamma", (c,)).requires_grad_(True)
    beta = read("beta", (c,)).requires_grad_(True)
    running_mean, running_var = read("running_mean", (c,)), read("running_var", (c,))
    y = torch.nn.functional.batch_norm(x, running_mean, running_var, gamma, beta, training=True,
                                       momentum=momentum, eps=eps)
    y.backward(dy)
    dx = x.grad
    if layout == "NHWC":
        y, dx = y.permute(0, 2, 3, 1), dx.permute(0, 2, 3, 1)
    write("y", y)
    write("dx", dx)
    write("dgamma", gamma.grad)
    write("dbeta", beta.grad)
    write("running_mean_out", running_mean)
    write("running_var_out", running_var)


main()
