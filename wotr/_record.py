"""Frozen, typed records: what ``@dataclass(frozen=True)`` gives wotr, at a fraction of its cost.

Why not ``dataclasses``: in Python 3.11 it compiles every generated method with its own ``exec``
(six for a frozen class, ten with ordering) and imports ``inspect`` (with ``ast``, ``dis`` and
``tokenize``). On these machines that is ~0.9 ms per class and ~10 ms for the import: about a
third of every ``git wotr verify``, which an installer hook pays on every package. ``record``
compiles only ``__init__`` (one ``exec``, when the class is first instantiated: a command defines
~30 record classes and instantiates about two thirds of them) and makes the other methods as plain
closures over the field names; it imports nothing heavy. mypy checks records as dataclasses
(PEP 681 ``dataclass_transform``).

What a record has, as a dataclass would: ``__init__`` taking the fields in order (a field with a
default or ``field(default_factory=...)`` may be omitted), then ``__post_init__`` if defined;
``__repr__`` (fields declared with ``field(repr=False)`` left out); ``__eq__`` and ``__hash__`` over
all fields, equal only to an instance of the very same class; assignment and deletion refused
(``FrozenError``); with ``order=True``, ``<``, ``<=``, ``>``, ``>=`` over the fields;
with ``frozen=False``, plain assignable attributes and no hash.
Refused, so that nothing is silently different from a dataclass: inheritance from or by a record,
``ClassVar``/``InitVar`` fields, an unhashable (mutable) shared default, ``field()`` without an
annotation, field names ``self`` or starting with ``_`` (the generated code's own names), and a
class that defines one of the generated methods itself.
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False  # typing itself is not imported at run time (verify's start-up)
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform, overload

    T = TypeVar("T")
else:  # what mypy needs from typing is only markers at run time

    def overload(fn: object) -> object:
        return fn

    def dataclass_transform(**_options: object) -> object:
        return overload


_MISSING: Any = object()


class FrozenError(AttributeError):
    """An attempt to change a field of a frozen record."""


class _Field:
    __slots__ = ("default", "factory", "repr")

    def __init__(self, default: Any, factory: Callable[[], Any] | None, repr: bool) -> None:
        self.default = default
        self.factory = factory
        self.repr = repr


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    repr: bool = True,
) -> Any:
    """Options of one field, as ``dataclasses.field``: a default, a factory, or no repr."""
    if default is not _MISSING and default_factory is not None:
        raise TypeError("a field takes a default or a default_factory, not both")
    return _Field(default, default_factory, repr)


def fields(cls_or_record: Any) -> tuple[str, ...]:
    """The field names of a record class or instance, in declaration order."""
    names: tuple[str, ...] = cls_or_record.__record_fields__
    return names


def replace(obj: T, **changes: Any) -> T:
    """A copy of the record ``obj`` with some fields changed (``__post_init__`` runs again)."""
    unknown = set(changes) - set(fields(obj))
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {sorted(unknown)[0]!r}")
    values = {name: changes.get(name, getattr(obj, name)) for name in fields(obj)}
    return type(obj)(**values)


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, order: bool = False, frozen: bool = True) -> Callable[[type[T]], type[T]]: ...  # noqa: F811


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(  # noqa: F811 (the overloads above: ruff does not see typing's overload at run time)
    cls: type[T] | None = None, /, *, order: bool = False, frozen: bool = True
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make ``cls`` a record: ``@record``, ``@record(order=True)`` or ``@record(frozen=False)``."""

    def wrap(c: type[T]) -> type[T]:
        return _build(c, order=order, frozen=frozen)

    return wrap if cls is None else wrap(cls)


def _build(cls: type[T], *, order: bool, frozen: bool) -> type[T]:
    name = cls.__qualname__
    if cls.__bases__ != (object,) or any(
        hasattr(base, "__record_fields__") for base in cls.__mro__[1:]
    ):
        raise TypeError(f"record {name}: inheritance is not supported")
    # inspect.get_annotations would import inspect, which this module exists to avoid
    annotations: dict[str, Any] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    names = tuple(annotations)
    env: dict[str, Any] = {
        "_MISSING": _MISSING,
        "_setattr": object.__setattr__,
        "_FrozenError": FrozenError,
    }
    params: list[str] = []
    body: list[str] = []
    shown: list[str] = []
    seen_default = False
    for f in names:
        kind = str(annotations[f]).replace("typing.", "").replace("dataclasses.", "")
        if kind.startswith(("ClassVar", "InitVar")):
            raise TypeError(f"record {name}: field {f} is a {kind.split('[')[0]}: not supported")
        if f == "self" or f.startswith("_"):
            raise TypeError(f"record {name}: field name {f!r} is reserved")
        spec = cls.__dict__.get(f, _MISSING)
        if not isinstance(spec, _Field):
            spec = _Field(spec, None, True)
        if spec.default is not _MISSING and type(spec.default).__hash__ is None:
            raise TypeError(f"record {name}: field {f} has a mutable default; use default_factory")
        if spec.factory is not None:
            env[f"_factory_{f}"] = spec.factory
            params.append(f"{f}=_MISSING")
            body.append(f"  if {f} is _MISSING: {f} = _factory_{f}()")
            seen_default = True
            if f in cls.__dict__:
                delattr(cls, f)
        elif spec.default is not _MISSING:
            env[f"_default_{f}"] = spec.default
            params.append(f"{f}=_default_{f}")
            seen_default = True
            setattr(cls, f, spec.default)
        elif seen_default:
            raise TypeError(
                f"record {name}: field {f} without a default follows one with a default"
            )
        else:
            params.append(f)
        body.append(f"  _setattr(self, {f!r}, {f})" if frozen else f"  self.{f} = {f}")
        if spec.repr:
            shown.append(f)
    stray = [k for k, v in cls.__dict__.items() if isinstance(v, _Field) and k not in annotations]
    if stray:
        raise TypeError(f"record {name}: field() without an annotation: {stray[0]}")
    if hasattr(cls, "__post_init__"):
        body.append("  self.__post_init__()")
    init = "\n".join([f"def __init__(self, {', '.join(params)}) -> None:", *(body or ["  pass"])])
    methods = _methods(names, tuple(shown), frozen=frozen, order=order)
    for method in ("__init__", *methods):
        if method in cls.__dict__:
            raise TypeError(f"record {name}: defines {method} itself")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        # __init__ is compiled when the class is first instantiated, not when it is defined: a
        # command defines ~30 record classes and instantiates about two thirds of them.
        if "__init__" not in env:
            exec(init, env)  # noqa: S102 - our own generated text, no outside input
            real = env["__init__"]
            real.__qualname__ = f"{name}.__init__"
            real.__module__ = cls.__module__
            type.__setattr__(cls, "__init__", real)
        env["__init__"](self, *args, **kwargs)

    for method, fn in (("__init__", __init__), *methods.items()):
        fn.__qualname__ = f"{name}.{method}"
        fn.__module__ = cls.__module__
        type.__setattr__(cls, method, fn)
    if not frozen:
        type.__setattr__(cls, "__hash__", None)  # mutable and compared by value: unhashable
    type.__setattr__(cls, "__record_fields__", names)
    type.__setattr__(cls, "__match_args__", names)
    return cls


def _methods(
    names: tuple[str, ...], shown: tuple[str, ...], *, frozen: bool, order: bool
) -> dict[str, Callable[..., Any]]:
    """repr, eq (and hash, frozen assignment, ordering) of a record: plain closures over the
    field names, nothing compiled (the field values compared and hashed as one tuple)."""
    from operator import attrgetter

    values: Callable[[Any], tuple[Any, ...]]
    if len(names) >= 2:
        values = attrgetter(*names)
    elif names:
        only = names[0]

        def values(obj: Any) -> tuple[Any, ...]:
            return (getattr(obj, only),)
    else:

        def values(obj: Any) -> tuple[Any, ...]:
            return ()

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in shown)
        return f"{self.__class__.__qualname__}({inner})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    methods: dict[str, Callable[..., Any]] = {"__repr__": __repr__, "__eq__": __eq__}
    if frozen:

        def __hash__(self: Any) -> int:
            return hash(values(self))

        def __setattr__(self: Any, name: str, value: Any) -> None:
            raise FrozenError(f"cannot assign to field {name!r}")

        def __delattr__(self: Any, name: str) -> None:
            raise FrozenError(f"cannot delete field {name!r}")

        methods |= {"__hash__": __hash__, "__setattr__": __setattr__, "__delattr__": __delattr__}
    if order:
        import operator

        for method in ("__lt__", "__le__", "__gt__", "__ge__"):
            methods[method] = _compare(getattr(operator, method.strip("_")), values)
    return methods


def _compare(op: Callable[[Any, Any], Any], values: Callable[[Any], Any]) -> Callable[..., Any]:
    def compare(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return op(values(self), values(other))
        return NotImplemented

    return compare
