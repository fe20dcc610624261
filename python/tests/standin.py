"""A stand-in for rpusim.configs in these tests (until that package lands): an object
with aihwkit's `mapping` fields and `to_keys()` giving the C keys, "kind" first."""
import types


class StandInConfig:
    def __init__(self, kind="floating_point", max_input_size=0, max_output_size=0,
                 digital_bias=True, **extra):
        self.kind = kind
        self.mapping = types.SimpleNamespace(max_input_size=max_input_size,
                                             max_output_size=max_output_size,
                                             digital_bias=digital_bias)
        self.extra = dict(extra)

    def to_keys(self):
        keys = [("kind", self.kind),
                ("mapping.max_input_size", str(self.mapping.max_input_size)),
                ("mapping.max_output_size", str(self.mapping.max_output_size)),
                ("mapping.digital_bias", "true" if self.mapping.digital_bias else "false")]
        keys += [(k, str(v)) for k, v in self.extra.items()]
        return keys
