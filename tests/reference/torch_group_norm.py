"""PyTorch's group_norm and layer_norm on inputs written by tests/kernels/group_norm_torch_test.cpp.

usage: torch_group_norm.py DIR KIND LAYOUT N C H W GROUPS EPS
KIND is "group" (torch.nn.functional.group_norm with GROUPS groups, gamma and beta per channel)
or "layer" (torch.nn.functional.layer_norm over the C features of an NC tensor).
Reads DIR/{x,dy,gamma,beta}.f32 (raw little-endian float32; x and dy in LAYOUT order) and writes
DIR/{y,dx,dgamma,dbeta}.f32. Exits 77 when torch cannot be imported, so the caller can skip.
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
    directory, kind, layout = sys.argv[1], sys.argv[2], sys.argv[3]
    n, c, h, w, groups = (int(v) for v in sys.argv[4:9])
    eps = float(sys.argv[9])
    torch.set_num_threads(1)
    files = Files(directory, layout, n, c, h, w)
    x, dy, gamma, beta = files.inputs(c)
    if kind == "group":
        y = torch.nn.functional.group_norm(x, groups, gamma, beta, eps)
    else:
        y = torch.nn.functional.layer_norm(x, (c,), gamma, beta, eps)
    y.backward(dy)
    files.write_gradients(y, x, gamma, beta)

if __name__ == "__main__":
    main()
