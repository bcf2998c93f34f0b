"""biokin_nb: two-view video to OpenSim kinematics (joint angles and segment scales).

Conventions (see DESIGN.md): SI units inside (m, s, rad); OpenSim's ground frame (Y up,
X forward); tensors take any leading batch dimensions; results are dataclasses.
"""

__version__ = "0.1.0"
