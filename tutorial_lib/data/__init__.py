"""Sequence data for the course: image transformations, MNIST, Shapes3D-style scenes and the
benchmark datasets (Shapes3D, Falcor3D, Isaac3D, official MNIST), all through one download
path (:mod:`tutorial_lib.download`)."""

from tutorial_lib.data.benchmarks import (
    FALCOR3D_HOLDOUT,
    FALCOR3D_SPACE,
    ISAAC3D_HOLDOUT,
    ISAAC3D_SPACE,
    ISAAC3D_VARIED,
    SHAPES3D_RESOURCE,
    Falcor3DSequences,
    ImageFolderSequences,
    Isaac3DSequences,
    Shapes3DSequences,
)
from tutorial_lib.data.factors import (
    FactorSequences,
    FactorSpace,
    HeldOutBlock,
    collate_sequences,
)
from tutorial_lib.data.mnist import (
    MNIST_IDX,
    load_mnist,
    load_mnist_idx,
    load_mnist_subset,
    read_idx,
)
from tutorial_lib.data.schedules import GateSchedule, stationary_on_rate
from tutorial_lib.data.sequences import (
    MNISTSequences,
    heldout_mnist_sequences,
    make_sequences,
    random_sequence_batch,
    step_amounts,
)
from tutorial_lib.data.shapes3d_procedural import (
    SHAPE_NAMES,
    SHAPES3D_HOLDOUT,
    SHAPES3D_SPACE,
    SHAPES3D_VARIED,
    ProceduralShapes3D,
    render_scenes,
)
from tutorial_lib.data.transforms import (
    TRANSFORMS,
    TransformSpec,
    affine_warp,
    hsv_to_rgb,
    hue_shift,
    rgb_to_hsv,
    rotate,
    scale,
    to_red_rgb,
)

__all__ = [
    "FALCOR3D_HOLDOUT",
    "FALCOR3D_SPACE",
    "ISAAC3D_HOLDOUT",
    "ISAAC3D_SPACE",
    "ISAAC3D_VARIED",
    "SHAPE_NAMES",
    "SHAPES3D_HOLDOUT",
    "SHAPES3D_RESOURCE",
    "SHAPES3D_SPACE",
    "SHAPES3D_VARIED",
    "FactorSequences",
    "FactorSpace",
    "Falcor3DSequences",
    "HeldOutBlock",
    "ImageFolderSequences",
    "Isaac3DSequences",
    "ProceduralShapes3D",
    "Shapes3DSequences",
    "collate_sequences",
    "render_scenes",
    "MNIST_IDX",
    "TRANSFORMS",
    "GateSchedule",
    "MNISTSequences",
    "TransformSpec",
    "affine_warp",
    "heldout_mnist_sequences",
    "hsv_to_rgb",
    "hue_shift",
    "load_mnist",
    "load_mnist_idx",
    "load_mnist_subset",
    "make_sequences",
    "random_sequence_batch",
    "read_idx",
    "rgb_to_hsv",
    "rotate",
    "scale",
    "stationary_on_rate",
    "step_amounts",
    "to_red_rgb",
]
