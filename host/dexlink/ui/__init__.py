"""The operator's terminal: a live dashboard (rich) and plain lines when not on a terminal."""
