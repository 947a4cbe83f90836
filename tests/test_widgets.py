"""The Helmholtz explorer: its fields are what they claim, and its static fallback draws."""

import matplotlib.pyplot as plt
import pytest
import torch

from tutorial_lib import calculus, widgets


@pytest.mark.parametrize("name", sorted(widgets.FIELD_TYPES))
def test_explorer_parts_are_curl_free_and_divergence_free(name):
    z = torch.rand(64, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2
    curl_free = widgets.mixed_field(name, 1.0, 0.0)
    div_free = widgets.mixed_field(name, 0.0, 1.0)
    assert curl_free(z).abs().max() > 1e-3 and div_free(z).abs().max() > 1e-3
    assert calculus.curl_2d(curl_free, z).abs().max() < 1e-5
    assert calculus.divergence(div_free, z).abs().max() < 1e-5


def test_static_explorer_figure_has_a_titled_panel_per_setting():
    fig = widgets.static_explorer_figure([("bumps", 1.0, 0.0, 0.5), ("bumps", 0.0, 1.0, 0.0)])
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 2
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in titled)
    plt.close(fig)


def test_explorer_is_a_widget_and_bad_choices_are_named():
    assert widgets.helmholtz_explorer() is not None
    with pytest.raises(ValueError, match="expected field_type in"):
        widgets.mixed_field("whirl", 1.0, 1.0)
    with pytest.raises(ValueError, match="expected a non-negative time"):
        widgets.draw_mixed_field(time=-1.0)
