"""Errors of rpusim.nn and rpusim.optim: each raises a Python exception that names the
problem and the layer, with rpusim's C message where C detects it."""
import pytest
import torch

import rpusim
from rpusim.exceptions import ConfigError, ModuleError
from rpusim.nn import (AnalogConv1dMapped, AnalogConv2dMapped, AnalogLinearMapped,
                       AnalogSequential, drift_analog_weights)
from rpusim.nn.base import check_input_tensor
from rpusim.optim import AnalogSGD
from standin import make_config

torch.set_num_threads(1)


def fp(mi=0, mo=0):
    return make_config("floating_point", mi, mo)


def test_wrong_shape():
    conv = AnalogConv2dMapped(3, 4, 3, rpu_config=fp(), name="features.0")
    with pytest.raises(ValueError, match=r"features\.0: input of shape \(2, 5, 8, 8\); "
                                         r"expected \[N, 3, H, W\]"):
        conv(torch.zeros(2, 5, 8, 8))
    with pytest.raises(ValueError, match="features.0"):
        conv(torch.zeros(3, 8, 8))
    lin = AnalogLinearMapped(6, 2, rpu_config=fp())
    with pytest.raises(ValueError, match=r"expected \[\.\.\., 6\]"):
        lin(torch.zeros(4, 5))


def test_input_smaller_than_kernel_carries_the_c_message():
    conv = AnalogConv1dMapped(2, 2, 5, rpu_config=fp(), name="tiny")
    with pytest.raises(rpusim.RPUError, match="tiny|kernel") as err:
        conv(torch.zeros(1, 2, 3))
    assert err.value.status_name == "RPU_ERR_ARG"


def test_wrong_dtype_and_device():
    conv = AnalogConv1dMapped(2, 2, 1, rpu_config=fp(), name="c1")
    with pytest.raises(TypeError, match=r"c1: input has dtype torch\.float64.*float32"):
        conv(torch.zeros(1, 2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        conv([[0.0]])
    # no CUDA here: the check is the same for any non-CPU device (meta tensors have one)
    meta = torch.empty(1, 2, 3, device="meta")
    with pytest.raises(TypeError, match=r"c1: input is on device meta.*\.cpu\(\)"):
        conv(meta)
    with pytest.raises(TypeError, match=r"L: input is on device meta"):
        check_input_tensor(meta, "L")
    with pytest.raises(TypeError, match="weight has dtype"):
        conv.set_weights(torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="weight has 3 elements, the layer needs 4"):
        conv.set_weights(torch.zeros(3))


def test_padding_mode():
    with pytest.raises(ModuleError, match="only 'zeros' padding mode is supported") as err:
        AnalogConv2dMapped(2, 2, 3, padding_mode="reflect", rpu_config=fp())
    assert err.value.status_name == "RPU_ERR_MODULE"
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        AnalogConv2dMapped(2, 2, 3, padding_mode="mirror", rpu_config=fp())


def test_kernel_bigger_than_tile():
    with pytest.raises(ModuleError, match="too small to fit a single kernel: 9 > 8"):
        AnalogConv2dMapped(2, 2, 3, rpu_config=fp(8, 0))


def test_stale_forward_and_double_backward():
    lin = AnalogLinearMapped(3, 2, rpu_config=fp(), name="head")
    x = torch.rand(2, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    y1 = lin(x)
    lin(x)
    with pytest.raises(RuntimeError, match="head: backward of a forward pass that is not"):
        y1.sum().backward()
    y = lin(x)
    y.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="head: a second backward"):
        y.sum().backward()


def test_inference_calls_need_eval_mode():
    model = AnalogSequential(AnalogLinearMapped(3, 2, rpu_config=make_config("inference")))
    with pytest.raises(ModuleError, match="evaluation mode"):
        model.drift_analog_weights(1.0)
    with pytest.raises(ModuleError, match="evaluation mode"):
        drift_analog_weights(torch.nn.Sequential(model), 1.0)
    with pytest.raises(ConfigError, match="noise_model"):
        model.eval().program_analog_weights(noise_model=object())


def test_momentum_on_inference_tiles_is_refused():
    lin = AnalogLinearMapped(3, 2, rpu_config=make_config("inference"), name="fc")
    opt = AnalogSGD(lin.parameters(), lr=0.1, momentum=0.9)
    lin(torch.rand(2, 3, generator=torch.Generator().manual_seed(2))).sum().backward()
    with pytest.raises(ConfigError, match="momentum=0.9.*fc"):
        opt.step()


def test_deepcopy_refused():
    import copy  # pylint: disable=import-outside-toplevel
    lin = AnalogLinearMapped(3, 2, rpu_config=fp(), name="fc")
    with pytest.raises(TypeError, match="fc: an analog layer cannot be deep-copied"):
        copy.deepcopy(lin)


def test_config_rules_raise_config_error():
    """rpu_config_validate's rules come as ConfigError naming the key: output scales that
    aihwkit learns (rpusim keeps them fixed) and an input bound under noise management."""
    from rpusim.configs import MappingParameter  # pylint: disable=import-outside-toplevel
    cfg = make_config("single")
    cfg.mapping = MappingParameter(learn_out_scaling=True)
    with pytest.raises(ConfigError, match="mapping.learn_out_scaling"):
        AnalogLinearMapped(4, 3, rpu_config=cfg)
    cfg = make_config("single")
    cfg.forward.inp_bound = 2.0
    with pytest.raises(ConfigError, match="forward.inp_bound"):
        AnalogLinearMapped(4, 3, rpu_config=cfg)


def test_default_config_and_one_config_error():
    from rpusim import configs  # pylint: disable=import-outside-toplevel
    lin = AnalogLinearMapped(3, 2)              # aihwkit's default: SingleRPUConfig()
    assert isinstance(lin.rpu_config, configs.SingleRPUConfig)
    assert lin._cconfig.get("kind") == "single"  # pylint: disable=protected-access
    assert issubclass(ConfigError, configs.ConfigError)
