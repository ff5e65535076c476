"""One base for the package's user errors: every exception class defined in ``seqace_ros``
derives from SeqaceError and keeps a builtin base that says what kind of failure it is, so a
front end catches one type and older ``except ValueError`` callers keep working."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from ros_harness import import_ros_module

import seqace_ros
from seqace_ros.core.errors import SeqaceError

BUILTIN_KINDS = (ValueError, OSError, RuntimeError, LookupError)


def package_exception_classes() -> list[type[BaseException]]:
    import_ros_module("rclpy")  # the ros modules import rclpy
    classes = []
    for info in pkgutil.walk_packages(seqace_ros.__path__, "seqace_ros."):
        if info.name.endswith(".__main__"):  # runs its program when imported
            continue
        module = importlib.import_module(info.name)
        classes += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                    if issubclass(cls, BaseException) and cls.__module__ == info.name]
    return classes


def test_every_package_error_is_a_seqace_error_with_a_builtin_kind() -> None:
    classes = package_exception_classes()
    errors = [cls for cls in classes if issubclass(cls, Exception)]
    assert len(errors) >= 28  # the user errors of every layer, not an empty walk
    for cls in errors:
        assert issubclass(cls, SeqaceError), cls
        assert cls is SeqaceError or issubclass(cls, BUILTIN_KINDS), cls
    others = sorted(cls.__qualname__ for cls in classes if not issubclass(cls, Exception))
    assert others == ["StopRequested"]  # a stop signal, deliberately not an Exception
