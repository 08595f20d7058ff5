"""wotr._record behaves as ``dataclasses.dataclass(frozen=True)`` where wotr relies on it."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from wotr import _record
from wotr._record import FrozenError, field, record


@record
class Pair:
    name: str
    digest: str
    note: str | None = None
    hidden: bytes = field(default=b"", repr=False)


@dataclasses.dataclass(frozen=True)
class DPair:
    name: str
    digest: str
    note: str | None = None
    hidden: bytes = dataclasses.field(default=b"", repr=False)


@record(order=True)
class Ordered:
    a: int
    b: str


@dataclasses.dataclass(frozen=True, order=True)
class DOrdered:
    a: int
    b: str


@record(frozen=False)
class Counter:
    left: int = field(default_factory=lambda: 3)
    seen: list[int] = field(default_factory=list)


@record
class Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


def test_init_defaults_repr_like_dataclass() -> None:
    cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("a", "b"), {}),
        (("a", "b", "n"), {}),
        (("a",), {"digest": "d"}),
    ]
    for args, kwargs in cases:
        r, d = Pair(*args, **kwargs), DPair(*args, **kwargs)
        assert repr(r).replace("Pair", "X") == repr(d).replace("DPair", "X")
        assert (r.name, r.digest, r.note, r.hidden) == (d.name, d.digest, d.note, d.hidden)
    assert "hidden" not in repr(Pair("a", "b", hidden=b"secret"))
    with pytest.raises(TypeError):
        Pair("a")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Pair("a", "b", bogus=1)  # type: ignore[call-arg]


def test_equality_and_hash_over_all_fields_same_class_only() -> None:
    assert Pair("a", "b") == Pair("a", "b")
    assert hash(Pair("a", "b")) == hash(Pair("a", "b"))
    assert Pair("a", "b") != Pair("a", "b", hidden=b"x")  # repr=False still compares
    assert len({Pair("a", "b"), Pair("a", "b"), Pair("a", "c")}) == 2
    # a record never equals a tuple or a record of another class with the same values
    other: object = ("a", "b", None, b"")
    assert Pair("a", "b") != other
    twin: object = DPair("a", "b")
    assert Pair("a", "b") != twin


def test_frozen() -> None:
    p = Pair("a", "b")
    with pytest.raises(FrozenError):
        p.name = "c"  # type: ignore[misc]
    with pytest.raises(FrozenError):
        del p.name
    with pytest.raises(AttributeError):  # FrozenError is an AttributeError, as dataclasses'
        p.other = 1  # type: ignore[attr-defined]
    assert p.name == "a"


def test_order_like_dataclass() -> None:
    values = [(2, "a"), (1, "b"), (1, "a"), (2, "a")]
    assert [(o.a, o.b) for o in sorted(Ordered(*v) for v in values)] == [
        (d.a, d.b) for d in sorted(DOrdered(*v) for v in values)
    ]
    assert Ordered(1, "a") <= Ordered(1, "a") < Ordered(1, "b")
    with pytest.raises(TypeError):
        _ = Ordered(1, "a") < DOrdered(1, "a")  # type: ignore[operator]


def test_mutable_record_factories_are_per_instance_and_unhashable() -> None:
    one, two = Counter(), Counter()
    one.seen.append(1)
    one.left -= 1
    assert (one.left, one.seen, two.left, two.seen) == (2, [1], 3, [])
    with pytest.raises(TypeError):
        hash(one)


def test_post_init_runs_also_on_replace() -> None:
    assert Checked(1).value == 1
    with pytest.raises(ValueError):
        Checked(-1)
    with pytest.raises(ValueError):
        _record.replace(Checked(1), value=-1)
    assert _record.replace(Pair("a", "b"), note="n") == Pair("a", "b", "n")
    with pytest.raises(TypeError):
        _record.replace(Pair("a", "b"), bogus=1)
    assert _record.fields(Pair) == ("name", "digest", "note", "hidden")


def test_pickles_like_a_plain_object() -> None:
    p = Pair("a", "b", "n", b"h")
    assert pickle.loads(pickle.dumps(p)) == p


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda: type("Sub", (Pair,), {"__annotations__": {"x": "int"}}), id="subclass"
        ),
        pytest.param(
            lambda: type("Many", (), {"__annotations__": {"x": "list[int]"}, "x": []}),
            id="mutable-default",
        ),
        pytest.param(
            lambda: type("CV", (), {"__annotations__": {"x": "ClassVar[int]"}, "x": 1}),
            id="classvar",
        ),
        pytest.param(
            lambda: type("Late", (), {"__annotations__": {"x": "int", "y": "int"}, "x": 1}),
            id="default-then-required",
        ),
        pytest.param(
            lambda: type("Own", (), {"__annotations__": {"x": "int"}, "__eq__": lambda s, o: True}),
            id="own-method",
        ),
        pytest.param(lambda: type("S", (), {"__annotations__": {"self": "int"}}), id="self"),
        pytest.param(lambda: type("U", (), {"__annotations__": {"_setattr": "int"}}), id="under"),
        pytest.param(
            lambda: type("B", (), {"__annotations__": {"x": "bytearray"}, "x": bytearray()}),
            id="unhashable-default",
        ),
        pytest.param(
            lambda: type("F", (), {"__annotations__": {"x": "int"}, "y": field(default=1)}),
            id="field-without-annotation",
        ),
    ],
)
def test_refused_shapes(make: Any) -> None:
    with pytest.raises(TypeError):
        record(make())


def test_field_refuses_default_and_factory() -> None:
    with pytest.raises(TypeError):
        field(default=1, default_factory=int)
