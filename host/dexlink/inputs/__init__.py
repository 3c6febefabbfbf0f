"""Hand inputs for teleoperation other than the exoskeleton: VR headsets, data gloves, a
webcam, recorded files. Each adapter is a `HandInput` delivering `HandFrame`s (see
dexlink.inputs.frame, the contract the retargeting builds on);
`dexlink.inputs.spec.open_input(spec)` makes one from a `--input` value.
"""
