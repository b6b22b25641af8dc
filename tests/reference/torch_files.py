"""What the torch reference scripts share: their raw float32 files and the layouts' axes.

Imported by torch_batchnorm.py and torch_group_norm.py after their own guarded torch import
(they exit 77 where torch is absent).
"""
import numpy as np
import torch


class Files:
    """DIR/NAME.f32: raw little-endian float32, the tensors in LAYOUT order."""

    def __init__(self, directory, layout, n, c, h, w):
        self.directory = directory
        self.layout = layout
        self.shape = {"NC": (n, c), "NCHW": (n, c, h, w), "NHWC": (n, h, w, c)}[layout]

    def read(self, name, shape=None):
        path = f"{self.directory}/{name}.f32"
        return torch.from_numpy(np.fromfile(path, dtype="<f4").reshape(shape or self.shape).copy())

    def write(self, name, tensor):
        tensor.detach().contiguous().numpy().astype("<f4").tofile(f"{self.directory}/{name}.f32")

    def read_channels_first(self, name):
        """A tensor of the layout's shape with its channels in dimension 1, as torch's functions take them."""
        tensor = self.read(name)
        return tensor.permute(0, 3, 1, 2) if self.layout == "NHWC" else tensor

    def write_in_layout(self, name, tensor):
        """Writes a channels-first result back in the layout's order."""
        self.write(name, tensor.permute(0, 2, 3, 1) if self.layout == "NHWC" else tensor)

    def inputs(self, c):
        """x (requiring grad) and dy channels first, gamma and beta (both requiring grad) of c."""
        x = self.read_channels_first("x").clone().requires_grad_(True)
        gamma = self.read("gamma", (c,)).requires_grad_(True)
        beta = self.read("beta", (c,)).requires_grad_(True)
        return x, self.read_channels_first("dy"), gamma, beta

    def write_gradients(self, y, x, gamma, beta):
        """y and x's grad in the layout's order, gamma's and beta's grads."""
        self.write_in_layout("y", y)
        self.write_in_layout("dx", x.grad)
        self.write("dgamma", gamma.grad)
        self.write("dbeta", beta.grad)
