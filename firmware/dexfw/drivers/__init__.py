# Device drivers: small classes over the HAL's I2C / SPI / UART / Pin, buffers made once.
# Encoders fill raw turn16 + status per joint (sample); servos take goals in cdeg
# relative to the servo centre (write_goals) and read back a slice per call (poll).
# The servo vendors' register maps are data in feetech_table / dynamixel_table, shared
# with the simulated servos. See docs/interfaces.md for the shared contract.
