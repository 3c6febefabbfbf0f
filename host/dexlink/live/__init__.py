"""Live views of a session or recording: Foxglove over WebSocket (dexlink.live.foxglove)."""
