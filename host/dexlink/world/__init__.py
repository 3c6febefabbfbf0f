"""The physical hand: bodies, joints and actuators built from a hand file.

API (names other parts build on; keep them):

- `dexlink.world.geometry.load_geometry(hand_path) -> HandGeometry`: the hand file's
  [geometry] table and joint axes, checked, in metres and radians (`GeometryError`, a
  UserError, names the file and field when something is wrong).
- `dexlink.world.mjcf.hand_spec(hand_path) -> mujoco.MjSpec`: the hand for a world to
  attach. Body "wrist" (a free joint also named "wrist"; attach it to a mocap body or
  weld it) carries body "palm" (palm frame: origin at the wrist crease, x to the
  fingertips, y to the thumb, z out of the back of the hand). One body per joint,
  "<joint>_link", with the hinge named exactly as in the hand file (look joints up by
  name: MuJoCo orders them by the body tree, not by the hand file). One position
  actuator per motor, named after the motor (a direct-drive hand: the joint's name;
  ctrl = the motor's angle in rad: the joint angle, or A.q + b on a tendon hand, whose
  motors pull fixed tendons "<motor>_tendon"). Sites "<finger>_tip" (the fingertip) and
  "<finger>_tactile" (a box the size of the fingertip's tactile pad, its z axis out of
  the pad; put a MuJoCo `tactile` sensor's plate there). Options: the measured working
  settings (2 ms, implicitfast, elliptic cones, impratio 10).
- `dexlink.world.mjcf.hand_mjcf(hand_path) -> str`: standalone MJCF of that hand with a
  floor, a light and the wrist welded to a mocap body "wrist_target".
- `dexlink.world.urdf.hand_urdf(hand_path) -> str`: the same hand as URDF (root link
  "palm", the same joint and link names, capsules as a cylinder and two spheres, tip and
  pad frames as fixed links "<finger>_tip" and "<finger>_tactile").
- `dexlink.world.servos.SERVO_MODELS`: stall torque, speed and gain per servo model.

`dexlink model --hand HAND.toml --format mjcf|urdf --out FILE` writes either model.
"""
