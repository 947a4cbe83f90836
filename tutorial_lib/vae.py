"""Convolutional encoder, decoder, pair posterior and image likelihoods of the latent flow model.

Images are ``(batch, channels, size, size)`` with values in [0, 1]. Every network halves the
image side once per entry of ``channels`` (stride-2 convolutions), so ``size`` must be divisible
by ``2 ** len(channels)``: 28 with two layers (28 -> 14 -> 7), 64 with four, 128 with five.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "Encoder",
    "Decoder",
    "PairPosterior",
    "PairPosteriorOutput",
    "bernoulli_log_likelihood",
    "gaussian_log_likelihood",
    "check_images",
]


def check_images(
    x: object, name: str, channels: int, size: int, leading: str = "batch"
) -> torch.Tensor:
    """Check that ``x`` is a float tensor ``(batch, channels, size, size)``; name what arrived."""
    want = f"({leading}, {channels}, {size}, {size})"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected {name} to be a torch.Tensor {want}, got {type(x).__name__}")
    if x.dim() != 4 or tuple(x.shape[1:]) != (channels, size, size):
        raise ValueError(f"expected {name} of shape {want}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected {name} to be floating point, got dtype {x.dtype}")
    return x


def _check_geometry(size: int, channels: tuple[int, ...]) -> int:
    if len(channels) == 0:
        raise ValueError("expected at least one convolution layer in channels, got ()")
    factor = 2 ** len(channels)
    if size % factor != 0:
        raise ValueError(
            f"expected image size divisible by 2**len(channels) = {factor} "
            f"(channels={channels}), got size {size}"
        )
    return size // factor


def _conv_trunk(in_channels: int, channels: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_channels
    for out in channels:
        layers += [nn.Conv2d(width, out, kernel_size=4, stride=2, padding=1), nn.SiLU()]
        width = out
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """``q(z | x) = N(mu(x), diag exp(logvar(x)))``.

    Args:
        in_channels: image channels.
        size: image side.
        latent_dim: dimension ``D`` of ``z``.
        channels: output channels of the stride-2 convolutions.
        hidden: width of the fully connected layer after the convolutions.

    ``forward(x (batch, C, H, W)) -> (mu (batch, D), logvar (batch, D))``.
    """

    def __init__(
        self,
        in_channels: int,
        size: int,
        latent_dim: int,
        channels: tuple[int, ...] = (32, 64),
        hidden: int = 256,
    ) -> None:
        super().__init__()
        side = _check_geometry(size, tuple(channels))
        self.in_channels, self.size, self.latent_dim = in_channels, size, latent_dim
        self.trunk = _conv_trunk(in_channels, tuple(channels))
        self.head = nn.Sequential(
            nn.Linear(channels[-1] * side * side, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2 * latent_dim),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_images(x, "x", self.in_channels, self.size)
        mu, logvar = self.head(self.trunk(x)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)


class Decoder(nn.Module):
    """Maps ``z (batch, D)`` to image logits (or means) ``(batch, C, H, W)``.

    Mirror of :class:`Encoder`: a fully connected layer, then stride-2 transposed convolutions.
    """

    def __init__(
        self,
        out_channels: int,
        size: int,
        latent_dim: int,
        channels: tuple[int, ...] = (32, 64),
        hidden: int = 256,
    ) -> None:
        super().__init__()
        self.side = _check_geometry(size, tuple(channels))
        self.out_channels, self.size, self.latent_dim = out_channels, size, latent_dim
        widths = list(reversed(channels))
        self.first = widths[0]
        self.head = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, widths[0] * self.side**2)
        )
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            out = widths[i + 1] if i + 1 < len(widths) else out_channels
            layers.append(nn.ConvTranspose2d(width, out, kernel_size=4, stride=2, padding=1))
            if i + 1 < len(widths):
                layers.append(nn.SiLU())
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"expected z of shape (batch, {self.latent_dim}), got {tuple(z.shape)}"
            )
        h = self.head(z).reshape(-1, self.first, self.side, self.side)
        return self.body(h)


class PairPosteriorOutput(NamedTuple):
    """Spike logits and slab parameters for one transition.

    Attributes:
        spike_logits: ``(batch, K)`` (single control) or ``(batch, K, 2)`` (double control:
            curl-free spike, divergence-free spike).
        slab_loc: ``(batch, K)``, mean of the log speed.
        slab_log_scale: ``(batch, K)``, log standard deviation of the log speed.
    """

    spike_logits: torch.Tensor
    slab_loc: torch.Tensor
    slab_log_scale: torch.Tensor


class PairPosterior(nn.Module):
    """``q(y_t, s_t | x_{t-1}, x_t)``: the frame pair, stacked on channels, gives per field the
    spike logits and the log-normal slab parameters.

    Args:
        in_channels: channels of one frame (the network sees ``2 * in_channels``).
        size: image side.
        n_fields: number of fields ``K``.
        channels, hidden: network sizes.
        double_control: two spikes per field (curl-free part, divergence-free part).
        slab_init_scale: initial standard deviation of the log speed.

    ``forward(x_prev, x_next)`` with frames ``(batch, C, H, W)`` returns a
    :class:`PairPosteriorOutput`.
    """

    def __init__(
        self,
        in_channels: int,
        size: int,
        n_fields: int,
        channels: tuple[int, ...] = (32, 64),
        hidden: int = 256,
        double_control: bool = False,
        slab_init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        side = _check_geometry(size, tuple(channels))
        self.in_channels, self.size, self.n_fields = in_channels, size, n_fields
        self.double_control = double_control
        n_spikes = n_fields * (2 if double_control else 1)
        self.trunk = nn.Sequential(
            _conv_trunk(2 * in_channels, tuple(channels)),
            nn.Linear(channels[-1] * side * side, hidden),
            nn.SiLU(),
        )
        self.spike = nn.Linear(hidden, n_spikes)
        self.slab = nn.Linear(hidden, 2 * n_fields)
        with torch.no_grad():
            self.slab.weight.mul_(0.01)
            self.slab.bias[:n_fields].zero_()
            self.slab.bias[n_fields:].fill_(math.log(slab_init_scale))

    def forward(self, x_prev: torch.Tensor, x_next: torch.Tensor) -> PairPosteriorOutput:
        check_images(x_prev, "x_prev", self.in_channels, self.size)
        check_images(x_next, "x_next", self.in_channels, self.size)
        if x_prev.shape[0] != x_next.shape[0]:
            raise ValueError(
                f"expected x_next with batch size {x_prev.shape[0]} like x_prev, "
                f"got {tuple(x_next.shape)}"
            )
        h = self.trunk(torch.cat([x_prev, x_next], dim=1))
        logits = self.spike(h)
        if self.double_control:
            logits = logits.reshape(-1, self.n_fields, 2)
        loc, log_scale = self.slab(h).chunk(2, dim=-1)
        return PairPosteriorOutput(logits, loc, log_scale.clamp(-7.0, 2.0))


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log p(x | logits)`` under independent Bernoullis, summed per image: ``(batch,)``.

    Targets in [0, 1] that are not binary (grey levels, colours) are used as soft targets
    (the cross-entropy); this is the usual practice on MNIST-like images, and the value is then
    not a normalised log-likelihood of continuous pixels.
    """
    if logits.shape != x.shape:
        raise ValueError(
            f"expected logits and x of one shape, got {tuple(logits.shape)} and {tuple(x.shape)}"
        )
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_log_likelihood(mean: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``log N(x; mean, sigma^2 I)`` summed per image: ``(batch,)``; ``sigma`` is fixed."""
    if mean.shape != x.shape:
        raise ValueError(
            f"expected mean and x of one shape, got {tuple(mean.shape)} and {tuple(x.shape)}"
        )
    if not sigma > 0:
        raise ValueError(f"expected a positive Gaussian sigma, got {sigma!r}")
    sq = ((x - mean) / sigma).pow(2).flatten(1)
    return -0.5 * sq.sum(1) - sq.shape[1] * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
