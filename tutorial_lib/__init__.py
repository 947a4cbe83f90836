"""tutorial_lib: probability flows, curl-free and divergence-free fields, sparse latent flows."""

__version__ = "0.1.0"
