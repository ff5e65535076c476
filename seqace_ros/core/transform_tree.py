"""A small, ROS-free transform tree: time-stamped rigid transforms between named frames.

It plays the role of tf2's buffer for the bag reader (poses from ``/tf`` and ``/tf_static``)
and for the ROS node when ``tf2_ros`` is not installed. As in tf2, frames form a forest:
every child frame has exactly one parent, and an edge is either static (valid at all times)
or dynamic (a time-sorted buffer of samples).

Lookup semantics for one dynamic edge at a stamp ``t`` with a maximum gap ``g``:

- a sample exactly at ``t`` is used as is;
- when samples exist on both sides of ``t`` and both are within ``g`` of ``t``, the edge is
  interpolated (translation linearly, rotation by slerp);
- otherwise, when the nearest sample is within ``g`` of ``t``, that sample is held
  (bounded zero-order hold, e.g. at the ends of a trajectory or across a dropout);
- otherwise the lookup fails with :class:`TransformError` naming the edge and the nearest
  available stamps.

Stamps are integer nanoseconds; transforms are 4x4 float64 ``T_parent_child`` (maps points
from the child frame to the parent frame).

:class:`MapEdgeChooser` decides which frame a localizer hangs under the map frame so that it
never gives a frame a second parent (REP-105): the root of the camera's tree, as AMCL does.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import interpolate_transform, invert_transform, is_rigid_transform

Transform = NDArray[np.float64]


class TransformError(SeqaceError, LookupError):
    """A transform cannot be looked up: unknown or unconnected frames, or no data near the stamp."""


class TransformTreeError(SeqaceError, ValueError):
    """A transform cannot be inserted: invalid matrix, self-loop, or a second parent for a frame."""


@dataclass
class _Edge:
    """The transform from ``parent`` to one child: static, or a time-sorted sample buffer."""

    parent: str
    static_transform: Transform | None = None
    stamps_ns: list[int] = field(default_factory=list)
    transforms: list[Transform] = field(default_factory=list)


class TransformTree:
    """Static and time-stamped transforms between named frames, with interpolated lookups.

    Args:
        cache_duration_ns: how much history each dynamic edge keeps, measured back from its
            newest sample (older samples are dropped on insertion so memory stays flat in a
            long-running node). ``None`` keeps everything (offline bag reading).
    """

    def __init__(self, cache_duration_ns: int | None = None) -> None:
        if cache_duration_ns is not None and cache_duration_ns <= 0:
            raise TransformTreeError(
                f"cache_duration_ns must be positive or None, got {cache_duration_ns}"
            )
        self._cache_duration_ns = cache_duration_ns
        self._edges: dict[str, _Edge] = {}

    @property
    def frames(self) -> set[str]:
        """Every frame named so far, as a parent or a child."""
        return set(self._edges) | {edge.parent for edge in self._edges.values()}

    def parent_of(self, frame: str) -> str | None:
        """The parent of ``frame``, or ``None`` for a root or an unknown frame."""
        edge = self._edges.get(frame)
        return None if edge is None else edge.parent

    def set_transform(
        self,
        parent: str,
        child: str,
        T_parent_child: ArrayLike,
        stamp_ns: int | None = None,
    ) -> None:
        """Insert one transform; ``stamp_ns=None`` makes the edge static.

        A static edge replaces earlier static data for that child; a dynamic sample with a
        stamp already present replaces that sample.

        Raises:
            TransformTreeError: on an empty frame name, ``parent == child``, a matrix that is
                not a 4x4 rigid transform, a child that already has another parent, or a
                static edge that already holds dynamic samples (or the reverse).
        """
        if not parent or not child:
            raise TransformTreeError(f"frame names must be non-empty, got {parent!r} -> {child!r}")
        if parent == child:
            raise TransformTreeError(f"a frame cannot be its own parent: {parent!r}")
        T = np.asarray(T_parent_child, dtype=np.float64)
        if not is_rigid_transform(T, atol=1e-5):
            raise TransformTreeError(
                f"transform {parent!r} -> {child!r} must be a 4x4 rigid transform, "
                f"got shape {T.shape} {T.tolist() if T.size == 16 else ''}"
            )
        edge = self._edges.get(child)
        if edge is None:
            if self._is_ancestor(child, parent):
                raise TransformTreeError(
                    f"edge {parent!r} -> {child!r} would close a loop: {child!r} is already "
                    f"an ancestor of {parent!r}"
                )
            edge = self._edges[child] = _Edge(parent=parent)
        elif edge.parent != parent:
            raise TransformTreeError(
                f"frame {child!r} already has parent {edge.parent!r}; cannot also be a child "
                f"of {parent!r} (each frame has one parent)"
            )
        if stamp_ns is None:
            if edge.stamps_ns:
                raise TransformTreeError(
                    f"edge {parent!r} -> {child!r} is dynamic; it cannot also be static"
                )
            edge.static_transform = T.copy()
            return
        if edge.static_transform is not None:
            raise TransformTreeError(
                f"edge {parent!r} -> {child!r} is static; it cannot also be dynamic"
            )
        self._insert_sample(edge, int(stamp_ns), T.copy())

    def _insert_sample(self, edge: _Edge, stamp_ns: int, T: Transform) -> None:
        stamps = edge.stamps_ns
        if not stamps or stamp_ns > stamps[-1]:
            stamps.append(stamp_ns)
            edge.transforms.append(T)
        else:
            index = bisect.bisect_left(stamps, stamp_ns)
            if index < len(stamps) and stamps[index] == stamp_ns:
                edge.transforms[index] = T
            else:
                stamps.insert(index, stamp_ns)
                edge.transforms.insert(index, T)
        if self._cache_duration_ns is not None:
            oldest_kept = stamps[-1] - self._cache_duration_ns
            drop = bisect.bisect_left(stamps, oldest_kept)
            if drop:
                del stamps[:drop]
                del edge.transforms[:drop]

    def _is_ancestor(self, frame: str, of: str) -> bool:
        return frame in self._chain_to_root(of)

    def _chain_to_root(self, frame: str) -> list[str]:
        """``[frame, parent, grandparent, ..., root]``."""
        chain = [frame]
        while (edge := self._edges.get(chain[-1])) is not None:
            chain.append(edge.parent)
        return chain

    def connected_groups(self) -> list[list[str]]:
        """Frames grouped by tree (connected component), each group sorted, root first."""
        groups: dict[str, list[str]] = {}
        for frame in self.frames:
            groups.setdefault(self._chain_to_root(frame)[-1], []).append(frame)
        return [
            [root, *sorted(f for f in members if f != root)]
            for root, members in sorted(groups.items())
        ]

    def clear_dynamic(self) -> int:
        """Forget every dynamic edge and its samples; static edges stay (as tf2's ``clear``).

        For a stream whose time jumped back (a bag played in a loop): the buffers would
        otherwise prune every new, older sample against the newest one of the first pass.

        Returns:
            The number of samples dropped.
        """
        dynamic = [child for child, edge in self._edges.items() if edge.static_transform is None]
        dropped = sum(len(self._edges[child].stamps_ns) for child in dynamic)
        for child in dynamic:
            del self._edges[child]
        return dropped

    def stamp_range(self, parent: str, child: str) -> tuple[int, int] | None:
        """First and last stamp (ns) of a dynamic edge; ``None`` when static or absent."""
        edge = self._edges.get(child)
        if edge is None or edge.parent != parent or not edge.stamps_ns:
            return None
        return edge.stamps_ns[0], edge.stamps_ns[-1]

    def lookup(
        self, target_frame: str, source_frame: str, stamp_ns: int, max_gap_ns: int
    ) -> Transform:
        """``T_target_source`` at ``stamp_ns``: maps points from source to target frame.

        Args:
            target_frame: frame the result expresses points in (e.g. ``map``).
            source_frame: frame whose points are mapped (e.g. the camera optical frame).
            stamp_ns: time of the lookup, nanoseconds.
            max_gap_ns: how far from ``stamp_ns`` a sample of each dynamic edge may be.

        Returns:
            (4, 4) float64 rigid transform.

        Raises:
            TransformError: unknown frames, frames in different trees (the message lists the
                connected groups), or an edge without samples within ``max_gap_ns``.
        """
        if max_gap_ns < 0:
            raise TransformError(f"max_gap_ns must be >= 0, got {max_gap_ns}")
        known = self.frames
        for name in (target_frame, source_frame):
            if name not in known:
                raise TransformError(
                    f"unknown frame {name!r}; known frames: {sorted(known) or 'none'}"
                )
        if target_frame == source_frame:
            return np.eye(4)
        source_chain = self._chain_to_root(source_frame)
        target_chain = self._chain_to_root(target_frame)
        if source_chain[-1] != target_chain[-1]:
            groups = "; ".join("{" + ", ".join(g) + "}" for g in self.connected_groups())
            raise TransformError(
                f"frames {target_frame!r} and {source_frame!r} are not connected; "
                f"connected groups (root first): {groups}"
            )
        in_target = set(target_chain)
        ancestor = next(frame for frame in source_chain if frame in in_target)
        T_ancestor_source = self._compose_up(source_chain, ancestor, stamp_ns, max_gap_ns)
        T_ancestor_target = self._compose_up(target_chain, ancestor, stamp_ns, max_gap_ns)
        return invert_transform(T_ancestor_target) @ T_ancestor_source

    def _compose_up(
        self, chain: list[str], ancestor: str, stamp_ns: int, max_gap_ns: int
    ) -> Transform:
        """``T_ancestor_chain[0]`` by composing the edges from ``chain[0]`` up to ``ancestor``."""
        T = np.eye(4)
        for child in chain:
            if child == ancestor:
                break
            T = self._edge_at(child, stamp_ns, max_gap_ns) @ T
        return T

    def _edge_at(self, child: str, stamp_ns: int, max_gap_ns: int) -> Transform:
        edge = self._edges[child]
        if edge.static_transform is not None:
            return edge.static_transform
        stamps = edge.stamps_ns
        if not stamps:
            raise TransformError(f"edge {edge.parent!r} -> {child!r} has no samples")
        index = bisect.bisect_left(stamps, stamp_ns)
        if index < len(stamps) and stamps[index] == stamp_ns:
            return edge.transforms[index]
        # Samples within the gap on each side of the stamp: (gap_ns, sample index).
        near = [
            (abs(stamps[i] - stamp_ns), i)
            for i in (index - 1, index)
            if 0 <= i < len(stamps) and abs(stamps[i] - stamp_ns) <= max_gap_ns
        ]
        if len(near) == 2:
            (gap_before, before), (_, after) = near
            alpha = gap_before / (stamps[after] - stamps[before])
            return interpolate_transform(edge.transforms[before], edge.transforms[after], alpha)
        if near:
            return edge.transforms[near[0][1]]
        nearest_stamps = [stamps[i] for i in (index - 1, index) if 0 <= i < len(stamps)]
        raise TransformError(
            f"no transform {edge.parent!r} -> {child!r} within {max_gap_ns} ns of "
            f"{stamp_ns}; nearest samples at {nearest_stamps} "
            f"(buffer covers {stamps[0]}..{stamps[-1]}, {len(stamps)} samples)"
        )


#: Longest parent chain :func:`frame_below` follows (a longer one is taken for a loop).
MAX_TREE_DEPTH = 256


def frame_below(frame: str, stop: str, parent_of: Callable[[str], str | None]) -> str:
    """The last frame on the way up from ``frame`` before ``stop`` or the root.

    Args:
        frame: where to start (e.g. the camera's optical frame).
        stop: the frame to stop under (the map frame: a localizer's own ``map -> X`` edge, when
            the TF buffer holds it, must not lift the answer to ``map``).
        parent_of: the parent of a frame, ``None`` for a root or an unknown frame.

    Returns:
        ``frame`` itself when it has no parent (or its parent is ``stop``), else its highest
        ancestor below ``stop``: the root of its tree when ``stop`` is not in it.

    Raises:
        TransformTreeError: the chain is longer than :data:`MAX_TREE_DEPTH` (a loop).
    """
    current = frame
    for _ in range(MAX_TREE_DEPTH):
        parent = parent_of(current)
        if parent is None or parent == stop:
            return current
        current = parent
    raise TransformTreeError(
        f"the parents of {frame!r} form a chain longer than {MAX_TREE_DEPTH} frames (a loop?)"
    )


@dataclass(frozen=True)
class MapEdge:
    """The transform a localizer publishes under the map frame.

    Attributes:
        child: the child frame of ``map -> child`` (the camera, or the root of the camera's
            tree), or ``None`` when nothing is to be published yet.
        reason: one line saying why.
    """

    child: str | None
    reason: str


class MapEdgeChooser:
    """Which frame a localizer publishes under ``map`` so that no frame gets a second parent.

    - A forced frame (e.g. ``odom``) is used as given.
    - Otherwise, when the camera frame has a parent in TF (a robot's tree, e.g.
      ``odom -> base_link -> camera_link -> camera_optical``), the root of that tree, so that
      ``map -> root -> ... -> camera`` equals the estimate (AMCL's ``map -> odom``).
    - When it has none, the camera frame itself, but only once TF has been listened to for
      ``settle_s``: a robot tree that arrives a little late must not find its camera with a
      second parent. A camera once seen with a parent keeps its root even when the parent
      disappears from the buffer (a TF buffer cleared after time jumped back).

    The chooser remembers, per camera frame, the root it last saw.
    """

    def __init__(self) -> None:
        self._roots: dict[str, str] = {}

    def choose(
        self,
        camera_frame: str,
        map_frame: str,
        forced_child: str,
        parent_of: Callable[[str], str | None],
        listening_s: float,
        settle_s: float,
    ) -> MapEdge:
        """The edge to publish for an image of ``camera_frame``.

        Args:
            camera_frame: the image's frame (``header.frame_id``).
            map_frame: the map frame (the published edge's parent).
            forced_child: a frame to use whatever the tree says ("" for the automatic choice).
            parent_of: the parent of a frame in TF, ``None`` for a root or an unknown frame.
            listening_s: how long TF has been received, seconds.
            settle_s: how long to listen before taking a parentless camera frame for a root.

        Raises:
            TransformTreeError: a loop in the parent chain.
        """
        if forced_child:
            return MapEdge(forced_child, f"{forced_child!r} set as odom_frame")
        root = frame_below(camera_frame, map_frame, parent_of)
        if root != camera_frame:
            self._roots[camera_frame] = root
            return MapEdge(root, f"root of the tree of {camera_frame!r}")
        remembered = self._roots.get(camera_frame)
        if remembered is not None:
            return MapEdge(remembered, f"root of the tree of {camera_frame!r} (seen before; "
                                       "its parent is not in the TF buffer now)")
        if listening_s < settle_s:
            return MapEdge(None, f"waiting {settle_s - listening_s:.1f} s more for TF to show "
                                 f"whether {camera_frame!r} has a parent")
        return MapEdge(camera_frame, f"{camera_frame!r} has no parent in TF")
