"""convert_to_analog_mapped keeps a model's structure (BatchNorm, pooling, activations,
residual adds in the model's own forward) and copies the digital weights exactly:
to_digital of each converted layer gives back the digital weights bit for bit
(floating-point config), the converted model's eval output matches the digital model's
within float32 rounding of the convolutions, and convert_to_digital restores torch layers.
"""
import torch
from torch import nn

import rpusim
from rpusim.nn import (AnalogConv2dMapped, AnalogLinearMapped, AnalogWrapper,
                       convert_to_analog_mapped, convert_to_digital)
from standin import make_config

torch.set_num_threads(1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block = Block(4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.block(self.stem(x))), 1))


def make_digital():
    torch.manual_seed(0)          # the same digital model on every rank
    net = Net()
    for m in net.modules():       # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_structure_and_exact_round_trip():
    digital = make_digital()
    analog = convert_to_analog_mapped(digital, make_config("floating_point", 18, 3))
    assert isinstance(analog, AnalogWrapper) and isinstance(analog, Net)
    assert isinstance(analog.stem[0], AnalogConv2dMapped)
    assert isinstance(analog.stem[1], nn.ReLU) and isinstance(analog.stem[2], nn.MaxPool2d)
    assert isinstance(analog.block.conv1, AnalogConv2dMapped)
    assert isinstance(analog.block.bn1, nn.BatchNorm2d)
    assert isinstance(analog.fc, AnalogLinearMapped)
    assert analog.block.conv1.label == "block.conv1"
    assert len(list(analog.analog_layers())) == 4
    assert isinstance(digital.stem[0], nn.Conv2d), "not in place by default"
    for name in ("stem.0", "block.conv1", "block.conv2", "fc"):
        a = analog.get_submodule(name)
        d = digital.get_submodule(name)
        back = type(a).to_digital(a)
        assert type(back) is type(d)
        assert torch.equal(back.weight, d.weight), name
        assert (back.bias is None) == (d.bias is None)
        if d.bias is not None:
            assert torch.equal(back.bias, d.bias)
            assert torch.equal(a.bias, d.bias)
    analog.eval()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ya, yd = analog(x), digital(x)
    assert (ya - yd).abs().max() <= 1e-5 * (1 + yd.abs().max()), (ya - yd).abs().max()
    restored = convert_to_digital(analog)
    assert isinstance(restored.block.conv2, nn.Conv2d)
    assert torch.equal(restored.block.conv2.weight, digital.block.conv2.weight)


def test_analog_bias_round_trip_and_exclude():
    digital = make_digital()
    cfg = make_config("floating_point", 18, 2, digital_bias=False)
    analog = convert_to_analog_mapped(digital, cfg, exclude_modules=["fc"])
    assert isinstance(analog.fc, nn.Linear)
    a = analog.stem[0]
    assert a.analog_bias and a.bias is None
    w, b = a.get_weights()
    assert torch.equal(w, digital.stem[0].weight.reshape(4, -1))
    assert torch.equal(b, digital.stem[0].bias)


def test_from_digital_is_collective_and_same_everywhere():
    from mpi4py import MPI  # pylint: disable=import-outside-toplevel
    rpusim.manual_seed(3)
    d = nn.Conv1d(3, 5, 2, groups=1)
    torch.nn.init.constant_(d.weight, 0.25)
    a = rpusim.nn.AnalogConv1dMapped.from_digital(d, make_config("floating_point", 4, 2))
    w = a.get_weights()[0]
    assert torch.equal(w, torch.full((5, 6), 0.25))
    assert len(set(MPI.COMM_WORLD.allgather(bytes(w.numpy().tobytes())))) == 1
