"""Checkpoints of a run: RUN/checkpoints/<step>/ holds model.safetensors (the trained
weights), ema.safetensors (their moving average, what a deployment loads),
optimizer.safetensors + state.json (AdamW's moments, param groups and the step), and
RUN/checkpoints/last points at the newest. A checkpoint is written to a temporary
directory and renamed, so a killed run never leaves a half-written one as `last`.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dexlink.errors import FileFormatError

LAST = "last"


def state_tensors(module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(run_dir: Path, step: int, model, ema_model, optimizer) -> Path:
    root = Path(run_dir) / "checkpoints"
    final = root / ("%07d" % step)
    tmp = root / (".tmp-%07d" % step)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(state_tensors(model), str(tmp / "model.safetensors"))
    save_file(state_tensors(ema_model), str(tmp / "ema.safetensors"))
    opt = optimizer.state_dict()
    tensors = {}
    for index, entries in opt["state"].items():
        for name, value in entries.items():
            tensors["%s.%s" % (index, name)] = torch.as_tensor(value).detach().cpu().contiguous()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, "param_groups": opt["param_groups"]},
                                               indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    link = root / (".tmp-" + LAST)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(final.name)
    os.replace(link, root / LAST)
    return final


def last_checkpoint(run_dir: Path) -> Path:
    path = Path(run_dir) / "checkpoints" / LAST
    if not path.is_dir():
        raise FileFormatError("%s: no checkpoint (has `dexlink train` saved one in %s?)"
                              % (path, run_dir))
    return path.resolve()


def _load(path: Path) -> dict:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise FileFormatError("%s: missing" % path) from None
    except (SafetensorError, OSError, ValueError) as e:
        raise FileFormatError("%s: unreadable safetensors (%s)" % (path, e)) from None


def load_weights(module: torch.nn.Module, path: Path) -> None:
    tensors = _load(Path(path))
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        lines = str(e).strip().splitlines()
        why = lines[1].strip() if len(lines) > 1 else lines[0]
        raise FileFormatError("%s: weights do not fit this policy's config (%s)"
                              % (path, why if len(why) < 160 else why[:157] + "...")) from None


def load_checkpoint(path: Path, model, ema_model, optimizer) -> int:
    """Restore a checkpoint directory into the objects; returns its step."""
    path = Path(path)
    load_weights(model, path / "model.safetensors")
    load_weights(ema_model, path / "ema.safetensors")
    try:
        state = json.loads((path / "state.json").read_text())
        step, groups = int(state["step"]), state["param_groups"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FileFormatError("%s: unreadable (%s)" % (path / "state.json", e)) from None
    entries: dict = {}
    for key, value in _load(path / "optimizer.safetensors").items():
        index, name = key.split(".", 1)
        entries.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": entries, "param_groups": groups})
    except (ValueError, KeyError) as e:
        raise FileFormatError("%s: optimizer state does not fit (%s)"
                              % (path / "optimizer.safetensors", e)) from None
    return step
