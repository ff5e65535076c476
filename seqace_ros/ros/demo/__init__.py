"""The end-to-end demo behind ``scripts/demo.sh``: map a scene from a bag with ``mapping_node``,
feed its query frames live over DDS to ``relocalization_node``, and report how well it
relocalized (recall, median errors, latency) with a trajectory plot.

Run it as ``python -m seqace_ros.ros.demo [--real] [--mode sequence] [--out DIR]`` (see
:mod:`seqace_ros.ros.demo.cli`); the steps are in :mod:`seqace_ros.ros.demo.run`.
"""
