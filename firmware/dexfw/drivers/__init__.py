# Device drivers: small classes over the HAL's I2C / SPI / UART / Pin, buffers made once.
# Encoders fill raw turn16 + status per joint (sample); servos take goals in cdeg
# relative to the servo centre (write_goals) and read back a slice per call (poll).
# See docs/interfaces.md for the shared contract.
