"""The machinery of rpusim's aihwkit-style config classes: declared fields with defaults,
a guard against unknown attribute names, light type checks on assignment, and the
rendering of a field onto its C key (the dotted names of rpu_config_keys()).

A config class declares its fields as class attributes made with field(); the class then
takes them as keyword (or positional, in declaration order) constructor arguments, holds
them as instance attributes and refuses any other attribute name. Values are checked for
their Python type when set; ranges and cross-field rules are C's (rpu_config_set and
rpu_config_validate report them, naming the key). Features of aihwkit that rpusim does
not have raise UnsupportedConfigError naming the field when the config is rendered
(to_keys()), never silently.
"""
import copy
import difflib
import enum
import numbers
import struct

__all__ = ["ConfigError", "UnknownFieldError", "UnsupportedConfigError", "field", "Params",
           "unsupported_class", "f32"]


class ConfigError(ValueError):
    """A config that rpusim cannot use (wrong type, unknown field, unsupported feature)."""


class UnknownFieldError(ConfigError, AttributeError, TypeError):
    """A field name the class does not have (a typo, or an aihwkit field of another
    class). An AttributeError for attribute assignment, a TypeError for a constructor
    argument, as Python's own errors would be."""


class UnsupportedConfigError(ConfigError, NotImplementedError):
    """An aihwkit class, field value or feature that rpusim does not implement."""


_MISSING = object()


class _Field:
    """One declared field. kind: float, int, u64, bool, enum, list, obj, any.
    key: the C key relative to the owner's prefix (default: the field name); False: not
    rendered by the generic code (the owner renders or checks it itself)."""

    def __init__(self, default, factory, kind, key, enum_cls, classes, optional, init,
                 check):
        self.default = default
        self.factory = factory
        self.kind = kind
        self.key = key
        self.enum_cls = enum_cls
        self.classes = classes
        self.optional = optional
        self.init = init
        self.check = check
        self.name = None

    def make_default(self):
        if self.factory is not None:
            return self.factory()
        return copy.deepcopy(self.default)


def field(default=_MISSING, *, factory=None, kind=None, key=None, enum_cls=None,
          classes=None, optional=False, init=True, check=None):
    """Declares a field. kind is inferred from the default when not given (bool, int,
    float, Enum member, list). check(value) -> None or the reason why the value is not
    supported by rpusim (raised as UnsupportedConfigError on rendering)."""
    if kind is None:
        probe = factory() if factory is not None else default
        if isinstance(probe, bool):
            kind = "bool"
        elif isinstance(probe, enum.Enum):
            kind, enum_cls = "enum", type(probe)
        elif isinstance(probe, int):
            kind = "int"
        elif isinstance(probe, float):
            kind = "float"
        elif isinstance(probe, list):
            kind = "list"
        elif isinstance(probe, Params):
            kind = "obj"
            classes = classes or (Params,)
        else:
            kind = "any"
    return _Field(default, factory, kind, key, enum_cls, classes, optional, init, check)


def f32(x):
    """x rounded to float32, as C stores it."""
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def _format_float(x):
    return repr(float(x))


def _suggest(cls, name):
    """" (did you mean 'x'?)", or the list of the class's fields if none is close."""
    near = difflib.get_close_matches(name, list(cls._fields), n=1, cutoff=0.6)
    if near:
        return " (did you mean %r?)" % near[0]
    return "; its fields are %s" % ", ".join(cls._fields)


class Params:
    """Base of every config class: declared fields, unknown names refused."""

    _fields = {}          # name -> _Field, in declaration order (bases first)
    _prefix = ""          # C key prefix of the generic rendering (e.g. "forward.")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # dataclass semantics: base fields first; a field redeclared in a subclass (e.g.
        # another default) keeps the position where the base declared it
        fields = {}
        for base in reversed(cls.__mro__[1:]):
            fields.update(getattr(base, "_fields", {}))
        for name, value in list(vars(cls).items()):
            if isinstance(value, _Field):
                value.name = name
                fields[name] = value
                delattr(cls, name)
        cls._fields = fields

    def __init__(self, *args, **kwargs):
        init_names = [n for n, f in self._fields.items() if f.init]
        if len(args) > len(init_names):
            raise TypeError("%s() takes at most %d positional arguments (%d given)"
                            % (type(self).__name__, len(init_names), len(args)))
        values = dict(zip(init_names, args))
        for name, value in kwargs.items():
            if name in values:
                raise TypeError("%s() got multiple values for argument %r"
                                % (type(self).__name__, name))
            if name not in self._fields:
                raise UnknownFieldError("%s() got an unknown field %r%s"
                                        % (type(self).__name__, name,
                                           _suggest(type(self), name)))
            if not self._fields[name].init:
                raise TypeError("%s() does not take %r as an argument (aihwkit fixes it "
                                "for this config; assign the attribute after construction "
                                "to change it)" % (type(self).__name__, name))
            values[name] = value
        for name, f in self._fields.items():
            self.__setattr__(name, values[name] if name in values else f.make_default())

    def __setattr__(self, name, value):
        f = self._fields.get(name)
        if f is None:
            raise UnknownFieldError("%s has no field %r%s"
                                    % (type(self).__name__, name, _suggest(type(self), name)))
        object.__setattr__(self, name, self._coerce(f, value))

    def _coerce(self, f, value):
        where = "%s.%s" % (type(self).__name__, f.name)
        if value is None and f.optional:
            return None
        kind = f.kind
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError("%s must be a number, got %r" % (where, value))
            return value
        if kind in ("int", "u64"):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ConfigError("%s must be an integer, got %r" % (where, value))
            return int(value)
        if kind == "bool":
            if isinstance(value, bool) or (isinstance(value, numbers.Integral)
                                           and value in (0, 1)):
                return bool(value)
            raise ConfigError("%s must be True or False, got %r" % (where, value))
        if kind == "enum":
            if not isinstance(value, f.enum_cls):
                raise ConfigError("%s must be a %s (one of %s), got %r"
                                  % (where, f.enum_cls.__name__,
                                     ", ".join(m.name for m in f.enum_cls), value))
            return value
        if kind == "list":
            if not isinstance(value, (list, tuple)) or not all(
                    isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
                raise ConfigError("%s must be a list of numbers, got %r" % (where, value))
            return list(value)
        if kind == "obj":
            if not isinstance(value, f.classes):
                raise ConfigError("%s must be %s, got %s"
                                  % (where, " or ".join(c.__name__ for c in f.classes),
                                     type(value).__name__))
            return value
        return value

    # -- comparisons, printing --------------------------------------------------------

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields)

    __hash__ = None

    def __repr__(self):
        parts = ["%s=%r" % (n, getattr(self, n)) for n in self._fields]
        return "%s(%s)" % (type(self).__name__, ", ".join(parts))

    # -- rendering --------------------------------------------------------------------

    def _check_supported(self, path):
        """Raises UnsupportedConfigError for a field value rpusim does not implement;
        path names this object in messages (e.g. "SingleRPUConfig.forward")."""
        for name, f in self._fields.items():
            if f.check is not None:
                why = f.check(getattr(self, name))
                if why:
                    raise UnsupportedConfigError("%s.%s = %r: %s"
                                                 % (path, name, getattr(self, name), why))

    def _render(self, prefix, path):
        """The (C key, text) pairs of the fields that map one to one onto C keys: key
        prefix + field name, or the field's declared key."""
        self._check_supported(path)
        out = []
        for name, f in self._fields.items():
            if f.key is False:
                continue
            value = getattr(self, name)
            key = prefix + (f.key or name)
            if f.kind == "obj":
                if value is not None:
                    out.extend(value._render(key + ".", path + "." + name))
                continue
            out.append((key, render_value(f, value, "%s.%s" % (path, name))))
        return out


def render_value(f, value, where):
    """The C text of a field's value."""
    if f.kind == "float":
        return _format_float(value)
    if f.kind in ("int", "u64"):
        return str(int(value))
    if f.kind == "bool":
        return "true" if value else "false"
    if f.kind == "enum":
        name = c_enum_name(value)
        if name is None:
            raise UnsupportedConfigError("%s = %s: not supported by rpusim%s"
                                         % (where, value, _enum_hint(value)))
        return name
    if f.kind == "list":
        return "[" + ", ".join(_format_float(v) for v in value) + "]"
    raise ConfigError("%s: internal error: field kind %s is not rendered" % (where, f.kind))


# Enum members of aihwkit that rpusim does not have (value: what to use instead), and
# members whose C spelling is not the lower-case member name.
_ENUM_UNSUPPORTED = {}
_ENUM_ALIASES = {}


def register_enum(cls, unsupported=None, aliases=None):
    for member, why in (unsupported or {}).items():
        _ENUM_UNSUPPORTED[(cls, member)] = why
    for member, cname in (aliases or {}).items():
        _ENUM_ALIASES[(cls, member)] = cname


def c_enum_name(member):
    """The C spelling of an aihwkit enum member (lower-case member name), None if
    rpusim does not support it."""
    key = (type(member), member.name)
    if key in _ENUM_UNSUPPORTED:
        return None
    return _ENUM_ALIASES.get(key, member.name.lower())


def _enum_hint(member):
    why = _ENUM_UNSUPPORTED.get((type(member), member.name))
    return " (%s)" % why if why else ""


def unsupported_class(name, base, why, module):
    """A class with aihwkit's name that raises UnsupportedConfigError when constructed,
    so that scripts naming it fail with a clear message instead of an ImportError."""

    def __init__(self, *args, **kwargs):
        raise UnsupportedConfigError("%s is not supported by rpusim: %s" % (name, why))

    return type(name, (base,), {"__init__": __init__, "__module__": module,
                                "__doc__": "Not supported by rpusim: %s" % why})
