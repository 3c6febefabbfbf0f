# Feetech STS / SMS serial bus servos (STS3215 and relatives): the vendor's control table
# and protocol constants, as data. The one place they are written: the driver
# (dexfw.drivers.feetech) and the simulated servos (host/dexlink/sim/board/vservo.py) both
# read them from here. Source: Feetech's STS/SMS memory table; the instruction codes and
# ids are checked against feetech-servo-sdk (tests/test_vendor_packets.py).
#
# Multi-byte registers are little-endian on the STS/SMS series (the older SCS series is
# big-endian, with another table, and is not driven here).

# Packet `FF FF ID LEN INST PARAMS... CHECKSUM`
BROADCAST_ID = 0xFE
MAX_ID = 0xFC
INST_PING = 0x01
INST_READ = 0x02
INST_WRITE = 0x03
INST_SYNC_READ = 0x82
INST_SYNC_WRITE = 0x83

# register name: (address, size in bytes)
CONTROL_TABLE = {
    # EEPROM: kept over power cycles, written only while "Lock" is 0
    "Firmware_Major_Version": (0, 1),
    "Firmware_Minor_Version": (1, 1),
    "Model_Number": (3, 2),
    "ID": (5, 1),
    "Baud_Rate": (6, 1),
    "Return_Delay_Time": (7, 1),  # 2 us units; 250 (500 us) from the factory
    "Response_Status_Level": (8, 1),
    "Min_Position_Limit": (9, 2),
    "Max_Position_Limit": (11, 2),
    "Max_Temperature_Limit": (13, 1),
    "Max_Voltage_Limit": (14, 1),
    "Min_Voltage_Limit": (15, 1),
    "Max_Torque_Limit": (16, 2),
    "Homing_Offset": (31, 2),
    "Operating_Mode": (33, 1),
    # RAM
    "Torque_Enable": (40, 1),
    "Acceleration": (41, 1),
    "Goal_Position": (42, 2),
    "Goal_Time": (44, 2),
    "Goal_Velocity": (46, 2),
    "Torque_Limit": (48, 2),
    "Lock": (55, 1),  # 1: the EEPROM area is write-protected
    "Present_Position": (56, 2),
    "Present_Velocity": (58, 2),
    "Present_Load": (60, 2),
    "Present_Voltage": (62, 1),  # 0.1 V
    "Present_Temperature": (63, 1),  # degrees C
    "Status": (65, 1),
    "Moving": (66, 1),
    "Present_Current": (69, 2),
}
EEPROM_END = 40  # registers below this address are in EEPROM

# Signed registers are sign-and-magnitude: the bit that carries the sign.
SIGN_BIT = {
    "Homing_Offset": 11,
    "Goal_Velocity": 15,
    "Present_Position": 15,
    "Present_Velocity": 15,
    "Present_Load": 10,
}

# model: encoder counts per turn
RESOLUTION = {"sts3215": 4096, "sts3032": 4096, "sts3250": 4096}
# model: the values its Model_Number register may hold (none known for the STS3032)
MODEL_NUMBERS = {"sts3215": (777,), "sts3032": (), "sts3250": (2825,)}
