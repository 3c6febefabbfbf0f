"""Learning from recorded episodes: a compact Diffusion Policy (Chi et al.) trained on a
dexlink-exported LeRobot v3.0 dataset, and loaded again for deployment.

Everything here needs the optional `learn` extra (torch, diffusers, safetensors), except
`dexlink.learn.observation`, which export and the live path share and which needs numpy
only. `require()` turns a missing extra into a user's error instead of an ImportError.
"""
from __future__ import annotations

from dexlink.errors import UserError

EXTRA_HINT = "install the learn extra: pip install 'dexlink[learn]'"


def require() -> None:
    """Raise a UserError naming the extra when torch or diffusers is missing."""
    missing = []
    for module in ("torch", "diffusers", "safetensors"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UserError("%s not installed: %s" % (", ".join(missing), EXTRA_HINT))


def load_policy(run_dir, device: str = "cpu"):
    """The trained policy of a run directory (its last checkpoint, EMA weights), ready for
    `policy.predict_chunk(obs)`. See dexlink.learn.policy.load_policy."""
    require()
    from dexlink.learn.policy import load_policy as load

    return load(run_dir, device)
