"""PyTorch's group_norm and layer_norm on inputs written by tests/kernels/group_norm_torch_test.cpp.

usage: torch_group_norm.py DIR KIND LAYOUT N C H W GROUPS EPS
KIND is "group" (torch.nn.functional.group_norm with GROUPS groups, gamma and beta per channel)
or "layer" (torch.nn.functional.layer_norm over the C features of an NC tensor).
Reads DIR/{x,dy,gamma,beta}.f32 (raw little-endian float32; x and dy in LAYOUT order) and writes
DIR/{y,dx,dgamma,dbeta}.f32. Exits 77 when torch cannot be imported, so the caller can skip.
"""
import sys

try:
    import numpy as np
    import torch
except Exception as error:  # noqa: BLE001 - any import failure means "not available here"
    print(f"torch not available: {error}", file=sys.stderr)
    sys.exit(77)


def main():
    directory, kind, layout = sys.argv[1], sys.argv[2], sys.argv[3]
    n, c, h, w, groups = (int(v) for v in sys.argv[4:9])
    eps = float(sys.argv[9])
    torch.set_num_threads(1)

    def read(name, shape):
        return torch.from_numpy(np.fromfile(f"{directory}/{name}.f32", dtype="<f4").reshape(shape).copy())

    def write(name, tensor):
        tensor.detach().contiguous().numpy().astype("<f4").tofile(f"{directory}/{name}.f32")

    shape = {"NC": (n, c), "NCHW": (n, c, h, w), "NHWC": (n, h, w, c)}[layout]
    x = read("x", shape)
    dy = read("dy", shape)
    if layout == "NHWC":  # torch's group_norm takes channels in dimension 1
        x, dy = x.permute(0, 3, 1, 2), dy.permute(0, 3, 1, 2)
    x = x.clone().requires_grad_(True)
    gamma = read("gamma", (c,)).requires_grad_(True)
    beta = read("beta", (c,)).requires_grad_(True)
    if kind == "group":
        y = torch.nn.functional.group_norm(x, groups, gamma, beta, eps)
    else:
        y = torch.nn.functional.layer_norm(x, (c,), gamma, beta, eps)
    y.backward(dy)
    dx = x.grad
    if layout == "NHWC":
        y, dx = y.permute(0, 2, 3, 1), dx.permute(0, 2, 3, 1)
    write("y", y)
    write("dx", dx)
    write("dgamma", gamma.grad)
    write("dbeta", beta.grad)


if __name__ == "__main__":
    main()
