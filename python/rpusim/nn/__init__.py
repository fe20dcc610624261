"""rpusim.nn: aihwkit's analog layers and containers over rpusim's C tile engine.

    AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear  (aihwkit 1.1: tile-array split)
    AnalogConv1dMapped, AnalogConv2dMapped, AnalogConv3dMapped, AnalogLinearMapped
                                                            (aihwkit 1.0: mapped split)
    AnalogSequential, AnalogWrapper
    convert_to_analog, convert_to_analog_mapped, convert_to_digital (also in
    rpusim.nn.conversion, where aihwkit has them)
    program_analog_weights(model), drift_analog_weights(model, t_inference),
    analog_layers(model): the analog methods for any torch module (the analog layers and
    containers have them as methods too, as aihwkit's)

Random streams: each analog layer gets a layer id (creation order in the process) and
the run seed of rpusim.manual_seed (default 0) unless given layer_id= / seed=; see
rpusim._ids. torch's own thread count is the user's (tests fix it to 1).
"""
from rpusim.nn.array import AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear
from rpusim.nn.base import (AnalogLayerBase, AnalogMappedLayer, analog_layers,
                            drift_analog_weights, named_analog_layers, program_analog_weights)
from rpusim.nn.container import AnalogSequential, AnalogWrapper
from rpusim.nn.conversion import (convert_to_analog, convert_to_analog_mapped,
                                  convert_to_digital, specific_rpu_config_id)
from rpusim.nn.mapped import (AnalogConv1dMapped, AnalogConv2dMapped, AnalogConv3dMapped,
                              AnalogLinearMapped)

__all__ = ["AnalogLayerBase", "AnalogMappedLayer", "AnalogConv1d", "AnalogConv2d",
           "AnalogConv3d", "AnalogLinear", "AnalogConv1dMapped", "AnalogConv2dMapped",
           "AnalogConv3dMapped", "AnalogLinearMapped", "AnalogSequential", "AnalogWrapper",
           "convert_to_analog", "convert_to_analog_mapped", "convert_to_digital",
           "specific_rpu_config_id", "analog_layers", "named_analog_layers",
           "program_analog_weights", "drift_analog_weights"]
