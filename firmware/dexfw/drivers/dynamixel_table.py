# Dynamixel X series on Protocol 2.0 (XM430, XL330, XC330, XH430): the vendor's control
# table and protocol constants, as data. The one place they are written: the driver
# (dexfw.drivers.dynamixel) and the simulated servos (host/dexlink/sim/board/vservo.py)
# both read them from here. Source: the ROBOTIS e-Manual's X-series control tables; the
# instruction codes and ids are checked against dynamixel-sdk
# (tests/test_vendor_packets.py).
#
# Multi-byte registers are little-endian, signed ones two's complement.

# Packet `FF FF FD 00 ID LEN_L LEN_H INST PARAMS... CRC_L CRC_H`
BROADCAST_ID = 0xFE
MAX_ID = 0xFC
INST_PING = 0x01
INST_READ = 0x02
INST_WRITE = 0x03
INST_STATUS = 0x55
INST_SYNC_READ = 0x82
INST_SYNC_WRITE = 0x83

# register name: (address, size in bytes)
CONTROL_TABLE = {
    # EEPROM: kept over power cycles, written only while torque is off
    "Model_Number": (0, 2),
    "Model_Information": (2, 4),
    "Firmware_Version": (6, 1),
    "ID": (7, 1),
    "Baud_Rate": (8, 1),
    "Return_Delay_Time": (9, 1),  # 2 us units; 250 (500 us) from the factory
    "Drive_Mode": (10, 1),
    "Operating_Mode": (11, 1),
    "Protocol_Type": (13, 1),
    "Homing_Offset": (20, 4),
    "Temperature_Limit": (31, 1),
    "Max_Voltage_Limit": (32, 2),
    "Min_Voltage_Limit": (34, 2),
    "PWM_Limit": (36, 2),
    "Current_Limit": (38, 2),
    "Velocity_Limit": (44, 4),
    "Max_Position_Limit": (48, 4),
    "Min_Position_Limit": (52, 4),
    "Shutdown": (63, 1),
    # RAM
    "Torque_Enable": (64, 1),
    "LED": (65, 1),
    "Status_Return_Level": (68, 1),  # 2: every instruction is answered
    "Hardware_Error_Status": (70, 1),
    "Goal_PWM": (100, 2),
    "Goal_Current": (102, 2),
    "Goal_Velocity": (104, 4),
    "Profile_Acceleration": (108, 4),
    "Profile_Velocity": (112, 4),
    "Goal_Position": (116, 4),
    "Moving": (122, 1),
    "Present_PWM": (124, 2),
    "Present_Current": (126, 2),
    "Present_Velocity": (128, 4),
    "Present_Position": (132, 4),
    "Present_Input_Voltage": (144, 2),  # 0.1 V
    "Present_Temperature": (146, 1),  # degrees C
}
EEPROM_END = 64  # registers below this address are in EEPROM

# model family: encoder counts per turn (position-control mode)
RESOLUTION = {"xm430": 4096, "xl330": 4096, "xc330": 4096, "xh430": 4096}
# model family: the values its members' Model_Number register holds
MODEL_NUMBERS = {
    "xm430": (1020, 1030),  # W350, W210
    "xl330": (1190, 1200),  # M077, M288
    "xc330": (1210, 1220, 1230, 1240),  # T181, T288, M181, M288
    "xh430": (1000, 1010),  # W350, W210
}
