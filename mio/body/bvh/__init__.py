"""BVH in and out: motion-capture files onto the 22-joint HumanML3D skeleton (§4.1), and back.

    motion = import_bvh("take.bvh")            # any BVH -> ImportedMotion: features (T, 263), joints, 20 fps
    motion.save("motion.npz")                  # what `mio body generate` writes, plus where it came from
    write_bvh("walk.bvh", features)            # features (T, 263) at 20 fps -> the 22-joint hierarchy
    joints, fps = read_bvh_joints("walk.bvh")  # (T, 22, 3) metres, Y up, at the file's own rate

The package: `file` (parsing), `mapping` (skeletons onto the 22 joints, units, up axis), `importer`
(`import_bvh`, `read_bvh_joints`) and `writer` (`write_bvh`, `write_bvh_joints`, `bvh_channels`).
"""

from mio.body.bvh.file import UNITS, UP_AXES, BvhError
from mio.body.bvh.importer import ImportedMotion, import_bvh, read_bvh_joints
from mio.body.bvh.writer import bvh_channels, write_bvh, write_bvh_joints

__all__ = ["UNITS", "UP_AXES", "BvhError", "ImportedMotion", "bvh_channels", "import_bvh", "read_bvh_joints",
           "write_bvh", "write_bvh_joints"]
