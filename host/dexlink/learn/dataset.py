"""A dexlink-exported LeRobot v3.0 dataset, read for training: the files a user would
give LeRobot (meta/info.json, meta/stats.json, meta/episodes/*.parquet, data/*.parquet,
one mp4 per camera), read with pyarrow and PyAV.

Which features feed the policy is decided from meta/info.json (`select_features`), so a
dataset with more vectors (a wrist pose as observation.* and action.*) is used as it
comes. Videos are decoded once, resized to the policy's image size, and kept in memory:
LeRobot decodes per sample, which on a CPU costs more than the network.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dexlink.errors import FileFormatError, UserError
from dexlink.learn.config import FeatureSpec
from dexlink.learn.observation import ACTION, CONTACT, IMAGES, STATE

VECTOR_TYPES = ("float32", "float64")


def _is_vector(spec: dict) -> bool:
    return spec.get("dtype") in VECTOR_TYPES and len(spec.get("shape", [])) == 1


def select_features(features: dict, obs: list, tactile_as: str, where: str) -> FeatureSpec:
    """The policy's inputs and outputs among a dataset's features (meta/info.json)."""
    out = FeatureSpec()
    actions = sorted(k for k, v in features.items()
                     if (k == ACTION or k.startswith(ACTION + ".")) and _is_vector(v))
    if not actions:
        raise FileFormatError("%s: no action feature (a float vector named 'action')" % where)
    for k in actions:
        out.action_keys.append(k)
        out.action_dims.append(int(features[k]["shape"][0]))
        names = features[k].get("names") or []
        out.action_names += (list(names) if len(names) == out.action_dims[-1]
                             else ["%s[%d]" % (k, j) for j in range(out.action_dims[-1])])
    if "state" in obs:
        state = sorted((k for k, v in features.items() if k.startswith("observation.")
                        and not k.startswith(IMAGES) and k != CONTACT and _is_vector(v)),
                       key=lambda k: (k != STATE, k))
        if not state:
            raise FileFormatError("%s: --obs state, but the dataset has no observation.* "
                                  "vector" % where)
        out.state_keys = state
        out.state_dims = [int(features[k]["shape"][0]) for k in state]
    cameras = sorted(k for k, v in features.items() if k.startswith(IMAGES))
    for k in cameras:
        if features[k].get("dtype") != "video":
            raise FileFormatError("%s: %s is stored as %r; only video features are read"
                                  % (where, k, features[k].get("dtype")))
    tactile_cams = [k for k in cameras if k[len(IMAGES):].startswith("tactile_")]
    rgb_cams = [k for k in cameras if k not in tactile_cams]
    if "rgb" in obs:
        if not rgb_cams:
            raise FileFormatError("%s: --obs rgb, but the dataset has no RGB camera" % where)
        out.cameras += rgb_cams
    if "tactile" in obs:
        if tactile_as == "images":
            if not tactile_cams:
                raise FileFormatError("%s: --obs tactile, but the dataset has no tactile "
                                      "camera (observation.images.tactile_*)" % where)
            out.cameras += tactile_cams
        else:
            dim = int(features.get(CONTACT, {}).get("shape", [0])[0])
            if not dim:
                raise FileFormatError("%s: --obs tactile --tactile-as contact, but the dataset "
                                      "has no observation.contact measures" % where)
            out.contact_key, out.contact_dim = CONTACT, dim
    if not out.lowdim_keys and not out.cameras:
        raise UserError("--obs: nothing to observe")
    return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileFormatError("%s: missing: not a LeRobot dataset (export one with `dexlink "
                              "export SESSION --format lerobot`)" % path) from None
    except (OSError, ValueError) as e:
        raise FileFormatError("%s: unreadable JSON (%s)" % (path, e)) from None


def _read_parquets(folder: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(folder.glob("chunk-*/file-*.parquet"))
    if not files:
        raise FileFormatError("%s: no parquet files (chunk-*/file-*.parquet)" % folder)
    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f))
        except (OSError, pa.ArrowException) as e:
            raise FileFormatError("%s: unreadable parquet (%s)" % (f, e)) from None
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowException as e:
        raise FileFormatError("%s: parquet files that do not agree (%s)" % (folder, e)) from None


def dataset_info(root: Path) -> dict:
    """meta/info.json of a LeRobot v3.0 dataset directory, checked."""
    root = Path(root)
    if not root.exists():
        raise UserError("%s: no such dataset directory" % root)
    if not root.is_dir():
        raise UserError("%s: not a directory (DATASET is a LeRobot dataset directory, as "
                        "`dexlink export --format lerobot` writes)" % root)
    where = root / "meta" / "info.json"
    info = _read_json(where)
    if not isinstance(info, dict) or not isinstance(info.get("features"), dict):
        raise FileFormatError("%s: no features" % where)
    version = info.get("codebase_version")
    if version != "v3.0":
        raise FileFormatError("%s: codebase_version %r, only LeRobot v3.0 is read"
                              % (where, version))
    try:
        fps = float(info.get("fps") or 0)
    except (TypeError, ValueError):
        fps = 0
    if fps <= 0:
        raise FileFormatError("%s: no positive fps" % where)
    return info


class LeRobotDataset:
    """Episodes of a LeRobot v3.0 dataset in memory: vectors per feature, frames per camera.

    Rows of every episode are contiguous (dataset_from_index .. dataset_to_index), so a
    training window is a range of rows clamped to its episode's ends.
    """

    def __init__(self, root: Path, spec: FeatureSpec, image_hw=None, progress=None):
        self.root = Path(root)
        self.info = dataset_info(self.root)
        self.stats = _read_json(self.root / "meta" / "stats.json")
        self.fps = float(self.info["fps"])
        self.spec = spec
        data = _read_parquets(self.root / "data")
        self.episodes = self._episode_ranges()
        order = np.argsort(self._column(data, "index", "data/"), kind="stable")
        self.vectors = {}
        dims = dict(zip(spec.state_keys + spec.action_keys, spec.state_dims + spec.action_dims))
        if spec.contact_key:
            dims[spec.contact_key] = spec.contact_dim
        for key, dim in dims.items():
            v = self._column(data, key, "data/")[order]
            if v.ndim != 2 or v.shape[1] != dim:
                raise FileFormatError("%s: column %s has shape %s, meta/info.json says [%d]"
                                      % (self.root / "data", key, list(v.shape[1:]), dim))
            if not np.isfinite(v).all():
                raise FileFormatError("%s: column %s holds NaN or infinite values"
                                      % (self.root / "data", key))
            self.vectors[key] = v.astype(np.float32)
        self.timestamps = self._column(data, "timestamp", "data/")[order].astype(np.float64)
        self.n = len(order)
        covered = np.zeros(self.n + 1, np.int64)
        for a, b in self.episodes:
            if not 0 <= a < b <= self.n:
                raise FileFormatError("%s: an episode spans rows %d..%d, but data/ has %d rows"
                                      % (self.root / "meta" / "episodes", a, b, self.n))
            covered[a:b] += 1
        if (covered[:self.n] != 1).any():
            raise FileFormatError("%s: the episodes do not cover data/'s rows once each"
                                  % (self.root / "meta" / "episodes"))
        self.frames = {}
        if spec.cameras:
            from dexlink.learn.video import decode_camera

            for key in spec.cameras:
                self.frames[key] = decode_camera(self, key, image_hw, progress)

    def _column(self, table, key: str, where: str) -> np.ndarray:
        """A column as a numpy array: (rows,) for scalars, (rows, d) for vectors."""
        import pyarrow as pa

        if key not in table.column_names:
            raise FileFormatError("%s: no column %s" % (self.root / where, key))
        col = table.column(key).combine_chunks()
        try:
            if pa.types.is_fixed_size_list(col.type):
                return col.flatten().to_numpy(zero_copy_only=False).reshape(
                    len(col), col.type.list_size)
            if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
                return np.array(col.to_pylist(), dtype=np.float64)
            return col.to_numpy(zero_copy_only=False)
        except (ValueError, pa.ArrowException) as e:
            raise FileFormatError("%s: column %s is not numeric (%s)"
                                  % (self.root / where, key, e)) from None

    def _episode_ranges(self) -> list[tuple[int, int]]:
        table = _read_parquets(self.root / "meta" / "episodes")
        self.episode_meta = table.to_pylist()
        self.episode_meta.sort(key=lambda r: r.get("episode_index", 0))
        ranges = []
        for row in self.episode_meta:
            try:
                ranges.append((int(row["dataset_from_index"]), int(row["dataset_to_index"])))
            except (KeyError, TypeError):
                raise FileFormatError("%s: episode rows without dataset_from_index/"
                                      "dataset_to_index" % (self.root / "meta" / "episodes")) from None
        if not ranges:
            raise FileFormatError("%s: no episodes" % (self.root / "meta" / "episodes"))
        return ranges

    def __len__(self) -> int:
        return self.n

    def stat(self, key: str, name: str) -> np.ndarray:
        """One statistic of a feature from meta/stats.json (min, max, mean, std)."""
        try:
            return np.asarray(self.stats[key][name], np.float32)
        except (KeyError, TypeError, ValueError):
            raise FileFormatError(
                "%s: no %s for %s" % (self.root / "meta" / "stats.json", name, key)
            ) from None

    def episode_of_rows(self) -> np.ndarray:
        """(n, 2): the first row and one past the last of each row's episode."""
        bounds = np.zeros((self.n, 2), np.int64)
        for a, b in self.episodes:
            bounds[a:b] = (a, b)
        return bounds
