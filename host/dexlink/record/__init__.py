"""Recording: one crash-tolerant MCAP file per episode, a session index, recovery,
inspection and export. See episode.py (writing), session.py (index), reader.py,
recover.py, recorder.py (a session), inspect.py, export.py."""
