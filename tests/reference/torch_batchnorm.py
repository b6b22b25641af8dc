"""PyTorch's batch_norm on inputs written by tests/kernels/batchnorm_torch_test.cpp.

usage: torch_batchnorm.py DIR LAYOUT N C H W EPS MOMENTUM
Reads DIR/{x,dy,gamma,beta,running_mean,running_var}.f32 (raw little-endian float32; x and dy in
LAYOUT order) and writes DIR/{y,dx,dgamma,dbeta,running_mean_out,running_var_out}.f32.
Exits 77 when torch cannot be imported, so the caller can skip.
"""
import sys

try:
    import numpy  # noqa: F401 - torch_files reads with it
    import torch
except Exception as error:  # noqa: BLE001 - any import failure means "not available here"
    print(f"torch not available: {error}", file=sys.stderr)
    sys.exit(77)

from torch_files import Files  # noqa: E402 - after the guarded import of torch


def main():
    directory, layout = sys.argv[1], sys.argv[2]
    n, c, h, w = (int(v) for v in sys.argv[3:7])
    eps, momentum = float(sys.argv[7]), float(sys.argv[8])
    torch.set_num_threads(1)
    files = Files(directory, layout, n, c, h, w)
    x, dy, gamma, beta = files.inputs(c)
    running_mean, running_var = files.read("running_mean", (c,)), files.read("running_var", (c,))
    y = torch.nn.functional.batch_norm(x, running_mean, running_var, gamma, beta, training=True,
                                       momentum=momentum, eps=eps)
    y.backward(dy)
    files.write_gradients(y, x, gamma, beta)
    files.write("running_mean_out", running_mean)
    files.write("running_var_out", running_var)


main()
