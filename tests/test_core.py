"""config, seeding, plotting, training and widgets."""

import ipywidgets as widgets
import matplotlib
import pytest
import torch

from theorylab import config
from theorylab.plotting import figure
from theorylab.seeding import make_generator
from theorylab.training import train
from theorylab.widgets import explore


def test_scale_default_full_and_invalid(monkeypatch):
    monkeypatch.setattr(config, "_warned_full_on_cpu", True)
    monkeypatch.delenv("THEORYLAB_SCALE", raising=False)
    assert config.scale() == "small" and config.at_scale(1, 2) == 1
    monkeypatch.setenv("THEORYLAB_SCALE", "FULL")
    assert config.is_full() and config.at_scale(1, 2) == 2
    monkeypatch.setenv("THEORYLAB_SCALE", "huge")
    with pytest.raises(ValueError, match="THEORYLAB_SCALE.*'huge'"):
        config.scale()


def test_device_is_cpu_without_gpu(monkeypatch):
    monkeypatch.delenv("THEORYLAB_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert config.device().type == expected


def test_device_variable(monkeypatch):
    monkeypatch.setenv("THEORYLAB_DEVICE", "cpu")
    assert config.device().type == "cpu"
    monkeypatch.setenv("THEORYLAB_DEVICE", "tpu")
    with pytest.raises(ValueError, match="THEORYLAB_DEVICE.*'tpu'"):
        config.device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("THEORYLAB_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            config.device()


def test_full_scale_on_a_cpu_warns(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    monkeypatch.setattr(config, "_warned_full_on_cpu", False)
    monkeypatch.setenv("THEORYLAB_SCALE", "full")
    with pytest.warns(RuntimeWarning, match="without a GPU"):
        config.scale()


def test_generator_same_seed_same_numbers():
    a = torch.randn(5, generator=make_generator(3))
    b = torch.randn(5, generator=make_generator(3))
    c = torch.randn(5, generator=make_generator(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    gen = make_generator(1)
    assert make_generator(gen) is gen
    with pytest.raises(ValueError, match="seed"):
        make_generator(-1)
    with pytest.raises(TypeError, match="seed"):
        make_generator(1.5)


def test_figure_style_and_shapes():
    fig, axes = figure(1, 3)
    assert len(axes) == 3 and fig.get_size_inches()[0] == pytest.approx(9.6)   # 12.6 in, capped
    assert figure(1, 2)[0].get_size_inches()[0] == pytest.approx(8.4)
    assert matplotlib.rcParams["axes.spines.top"] is False
    with pytest.raises(ValueError, match="nrows"):
        figure(0, 1)


def test_train_minimises_a_quadratic():
    w = torch.nn.Parameter(torch.zeros(3))
    target = torch.tensor([1.0, -2.0, 0.5])
    losses = train([w], lambda step: (w - target).pow(2).sum(), steps=300, lr=0.1, progress=False)
    assert losses.shape == (300,) and losses[-1] < 1e-4 * losses[0]
    assert torch.allclose(w, target, atol=1e-2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=0, lr=0.1), "steps"), (dict(steps=5, lr=-1.0), "lr"),
    (dict(steps=5, lr=0.1, optimizer="lbfgs"), "optimizer"),
    (dict(steps=5, lr=0.1, schedule="step"), "schedule"),
])
def test_train_validates(kwargs, match):
    w = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match=match):
        train([w], lambda step: w.sum(), progress=False, **kwargs)


def test_train_stops_on_nan():
    w = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(FloatingPointError, match="step 0"):
        train([w], lambda step: w.sum() * float("nan"), steps=3, lr=0.1, progress=False)


def test_explore_panel_redraws_and_fallback_draws_each_setting():
    calls = []

    def draw(ax, a, b):
        calls.append((a, b))
        ax.plot([0, 1], [a, b])

    slider = widgets.IntSlider(1, min=0, max=5)
    panel, fig = explore(draw, {"a": slider, "b": widgets.FloatSlider(0.5)},
                         fallback=[{"a": 2}, {"a": 3, "b": 1.0}])
    assert isinstance(panel, widgets.VBox)
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "a = 3, b = 1"
    image = panel.children[1]
    first = bytes(image.value)
    assert first.startswith(b"\x89PNG")
    slider.value = 4
    assert calls[-1] == (4, 0.5)
    assert bytes(image.value).startswith(b"\x89PNG") and bytes(image.value) != first
    assert (2, 0.5) in calls and (3, 1.0) in calls


def test_explore_panel_fits_responds_on_release_and_reads_well_in_the_static_book():
    def draw(ax, lr, batch):
        ax.plot([0, 1], [lr, batch])

    eta = widgets.FloatSlider(0.06, min=0.01, max=0.1, step=0.01, description="η")
    batch = widgets.IntSlider(1, min=1, max=8, description="B")
    panel, fig = explore(draw, {"lr": eta, "batch": batch},
                         fallback=[{"lr": 0.03}, {"lr": 0.09}, {"lr": 0.09, "batch": 8}],
                         tooltips={"lr": "step size η", "batch": "batch size B"})
    assert not eta.continuous_update and not batch.continuous_update     # redraw on release
    assert eta.tooltip == "step size η" and eta.style.description_width == "initial"
    assert panel.children[0].layout.flex_flow == "row wrap" and eta.layout.min_width
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["η = 0.03", "η = 0.09", "η = 0.09, B = 8"]
    assert len(fig.axes) == 4 and not fig.axes[3].get_visible()          # two per row, 2 × 2
    bundle = panel._repr_mimebundle_()
    assert bundle["text/plain"].startswith("[Interactive panel") and "VBox(" not in repr(panel)
    assert "application/vnd.jupyter.widget-view+json" in bundle
    fast, _ = explore(draw, {"lr": widgets.FloatSlider(0.05), "batch": widgets.IntSlider(1)},
                      fallback=[{}], continuous=True)
    assert fast.children[0].children[0].continuous_update
    with pytest.raises(ValueError, match="tooltips name unknown"):
        explore(draw, {"lr": eta, "batch": batch}, fallback=[{}], tooltips={"eta": "?"})


def test_explore_shows_a_failing_draw_in_the_panel():
    def draw(ax, a):
        if a > 1:
            raise RuntimeError("bad setting")
        ax.plot([0, 1], [0, a])

    slider = widgets.IntSlider(1, min=0, max=5)
    panel, _ = explore(draw, {"a": slider}, fallback=[{"a": 0}])
    errors = panel.children[2]
    assert errors.outputs == ()
    before = bytes(panel.children[1].value)
    slider.value = 2
    assert "RuntimeError: bad setting" in "".join(o.get("text", "") for o in errors.outputs)
    assert bytes(panel.children[1].value) == before   # the last good figure stays
    slider.value = 0
    assert errors.outputs == () and bytes(panel.children[1].value) != before


def test_explore_validates():
    def draw(ax, a):
        return None

    with pytest.raises(ValueError, match="unknown controls"):
        explore(draw, {"a": widgets.IntSlider()}, fallback=[{"z": 1}])
    with pytest.raises(ValueError, match="1 to 4"):
        explore(draw, {"a": widgets.IntSlider()}, fallback=[])
    with pytest.raises(TypeError, match="controls"):
        explore(draw, {"a": 3}, fallback=[{"a": 1}])


@pytest.mark.parametrize("value, shown", [(None, True), ("1", True), ("0", False), ("off", False),
                                          ("False", False)])
def test_show_progress_follows_the_environment(monkeypatch, value, shown):
    if value is None:
        monkeypatch.delenv("THEORYLAB_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("THEORYLAB_PROGRESS", value)
    assert config.show_progress() is shown


def test_show_progress_rejects_garbage(monkeypatch):
    monkeypatch.setenv("THEORYLAB_PROGRESS", "garbage")
    with pytest.raises(ValueError, match="THEORYLAB_PROGRESS.*'garbage'"):
        config.show_progress()
