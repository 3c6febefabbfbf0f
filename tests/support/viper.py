"""Which board files hold native (viper) code."""

# The only board files with native code. A port built without the native emitters refuses
# such a file whole, at compile time, so each is imported guardedly by a plain-Python twin
# (cobsbuf/crcbuf, mapping, busbytes, trajectory, telemetry) that keeps its own versions
# when the import fails.
VIPER_MODULES = {"protocol/dexproto/viperloops.py", "firmware/dexfw/mapping_viper.py",
                 "firmware/dexfw/drivers/busbytes_viper.py", "firmware/dexfw/trajectory_viper.py",
                 "firmware/dexfw/telemetry_viper.py"}
