"""hwconfig: hand + board TOML -> the firmware's dexlink.json, refusing bad files with a
message that names the file and the field."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from conftest import ROOT
from dexlink import hwconfig, resources
from dexlink.hwconfig import HwConfigError, bus_time_us, compile_config, validate_config
from support.hands import hand_copy

HANDS = ROOT / "hardware" / "hands"
BOARDS = ("pico", "pico2", "esp32s3", "virtual")


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("hand", ("iso16", "iso22", "tendon16"))
def test_every_hand_compiles_on_every_board(hand, board):
    cfg = compile_config(HANDS / ("%s.toml" % hand), board)
    assert json.loads(hwconfig.dumps(cfg)) == cfg
    n = {"iso16": 16, "iso22": 22, "tendon16": 16}[hand]
    assert len(cfg["joints"]) == n == len(cfg["motors"])
    covered = sorted(j for g in cfg["encoders"] for j in g["joints"])
    assert covered == list(range(n))
    assert sorted(m for g in cfg["servos"] for m in g["joints"]) == list(range(n))
    assert cfg["board"]["name"] == board
    assert (cfg["coupling"] is not None) == (hand == "tendon16")


def test_units_and_groups_of_the_default_hand():
    cfg = compile_config(HANDS / "iso16.toml", "pico")
    j = cfg["joints"][1]  # thumb_cmc_flex: zero 358.7 deg, range -20..50, 360 deg/s
    assert j["zero_turn16"] == round(358.7 / 360 * 65536)
    assert (j["min_cdeg"], j["max_cdeg"], j["max_speed_cdeg_per_ms"]) == (-2000, 5000, 36)
    assert cfg["joints"][2]["direction"] == -1
    enc = cfg["encoders"]
    assert [(g["cls"], g["bus"], g["args"]["mux_addr"]) for g in enc] == [
        ("AS5600Mux", "i2c0", 0x70), ("AS5600Mux", "i2c1", 0x70)]
    assert enc[1]["joints"] == list(range(8, 16)) and enc[1]["args"]["channels"] == list(range(8))
    (servo,) = cfg["servos"]
    assert (servo["cls"], servo["args"]["ids"]) == ("FeetechBus", list(range(1, 17)))
    assert cfg["board"]["buses"]["i2c0"] == {"kind": "i2c", "id": 0, "scl": 5, "sda": 4,
                                             "freq": 400000}
    assert cfg["loop"] == {"hz": 1000, "telemetry_decimation": 10, "watchdog_ms": 250,
                           "watchdog_action": 0}


def test_tendon_coupling_and_spi_chain():
    cfg = compile_config(HANDS / "tendon16.toml", "esp32s3")
    a = cfg["coupling"]["a_q12"]
    assert a[0][0] == 6144 and a[1][0] == round(0.45 * 4096) and a[1][1] == 6144
    (chain,) = cfg["encoders"]
    assert chain["cls"] == "AS5048AChain" and chain["joints"] == list(range(16))
    assert [g["bus"] for g in cfg["servos"]] == ["uart1", "uart0"]
    assert cfg["loop"]["watchdog_action"] == 1


def test_bus_time_is_computed_from_the_bus_speeds():
    iso16 = bus_time_us(compile_config(HANDS / "iso16.toml", "pico"))
    # 8 AS5600 a bus: (3-byte read 29 bits + mux select 20 bits) at 400 kHz
    assert iso16["i2c0"] == pytest.approx(8 * 49 / 400e3 * 1e6)
    # 16 STS3215: sync-write 8 + 3*16 bytes, one READ + reply (16 bytes) every other cycle
    # at 1 kHz (the firmware's read-back rate), 10 bits at 1 Mbps
    assert iso16["uart1"] == pytest.approx((8 + 48 + 16 / 2) * 10)
    fw = (ROOT / "firmware" / "dexfw" / "loop.py").read_text()
    assert re.search(r"^READBACK_HZ = %d$" % hwconfig.READBACK_HZ, fw, re.M)
    tendon = bus_time_us(compile_config(HANDS / "tendon16.toml", "pico"))
    assert tendon["spi0"] == pytest.approx(16 * 16 / 10e6 * 1e6)


def _broken(tmp_path, old, new, hand="iso16"):
    text = (HANDS / ("%s.toml" % hand)).read_text()
    assert old in text, old
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old,new,field", [
    ('range_deg = [-30.0, 60.0]', 'range_deg = [60.0, -30.0]', "joints[0].range_deg"),
    ('channel = 1,', 'channel = 0,', "joints[1].encoder"),
    ('channel = 1,', 'channel = 9,', "joints[1].encoder.channel"),
    ('chip = "as5600", bus = "i2c0", mux = 0x70, channel = 0',
     'chip = "as5601", bus = "i2c0", mux = 0x70, channel = 0', "joints[0].encoder.chip"),
    ('chip = "as5600", bus = "i2c0", mux = 0x70, channel = 0',
     'chip = "as5600", bus = "uart1", mux = 0x70, channel = 0', "joints[0].encoder.bus"),
    ('zero_deg = 12.5', 'zero_deg = 360.0', "joints[0].encoder.zero_deg"),
    ('direction = 1 }\nservo', 'direction = 2 }\nservo', "joints[0].encoder.direction"),
    ('id = 2,', 'id = 1,', "joints[1].servo.id"),
    ('model = "sts3215"', 'model = "sts9999"', "joints[0].servo.model"),
    ('name = "thumb_cmc_flex"', 'name = "thumb_cmc_abd"', "joints[1].name"),
    ('hz = 1000', 'hz = 1', "loop.hz"),
    ('watchdog_action = "hold"', 'watchdog_action = "panic"', "loop.watchdog_action"),
    ('max_speed_dps = 360.0', 'max_speed_dps = "fast"', "joints[0].max_speed_dps"),
    ('range_deg = [-120.0, 120.0], direction = 1, center_deg = 0.0',
     'range_deg = [-120.0, 120.0], direction = 1, center_deg = 300.0',
     "joints[0].servo.center_deg"),
    ('finger = "thumb"\n', '', "joints[0].finger"),
    ('name = "iso16"', 'name = "iso16"\n[[', "not valid TOML"),
])
def test_bad_hand_is_refused_naming_file_and_field(tmp_path, old, new, field):
    path = _broken(tmp_path, old, new)
    with pytest.raises(HwConfigError) as e:
        compile_config(path, "pico")
    assert str(path) in str(e.value) and field in str(e.value)


@pytest.mark.parametrize("old,new,field", [
    ('[0, 0.75, 1.5, 0,', '[0, 0.75, 1.5,', "coupling.a[2]"),
    ('[1.5, 0, 0, 0, 0,', '[7.5, 7.5, 7.5, 7.5, 0,', "coupling.a[0]"),
    ('b_deg = [0.0, ', 'b_deg = [', "coupling.b_deg"),
    ('range_deg = [-300.0, 300.0]', 'range_deg = [-300.0, 400.0]', "motors[0].servo.range_deg"),
])
def test_bad_coupling_is_refused(tmp_path, old, new, field):
    path = _broken(tmp_path, old, new, "tendon16")
    with pytest.raises(HwConfigError) as e:
        compile_config(path, "pico")
    assert field in str(e.value)


def test_bad_board_is_refused(tmp_path):
    with pytest.raises(HwConfigError, match="no such board.*pico2"):
        compile_config(HANDS / "iso16.toml", "arduino")
    text = (ROOT / "hardware" / "boards" / "pico.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('kind = "spi"', 'kind = "can"'))
    with pytest.raises(HwConfigError, match=r"bad.toml: buses.spi0.kind"):
        compile_config(HANDS / "iso16.toml", bad)
    bad.write_text(text.replace("scl = 5\n", ""))
    with pytest.raises(HwConfigError, match=r"bad.toml: buses.i2c0.scl: missing"):
        compile_config(HANDS / "iso16.toml", bad)


def test_validate_config_uses_the_boards_rules():
    cfg = compile_config(HANDS / "iso16.toml", "virtual")
    cfg["servos"][0]["joints"].pop()
    with pytest.raises(HwConfigError, match="mine.json: servos: motor 15 is covered 0 times"):
        validate_config(cfg, "mine.json")
    cfg = compile_config(HANDS / "iso16.toml", "virtual")
    cfg["joints"][2]["scale_q12"] = 0
    with pytest.raises(HwConfigError, match=r"joints\[2\].scale_q12"):
        validate_config(cfg, "mine.json")


def test_cli_writes_json_warns_and_fails_clearly(tmp_path, capsys):
    out = tmp_path / "dexlink.json"
    assert hwconfig.main([str(HANDS / "iso16.toml"), "pico", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["hand"] == "iso16"
    bad = _broken(tmp_path, 'hz = 1000', 'hz = 2000')  # 16 AS5600 need ~1 ms a sweep
    assert hwconfig.main([str(bad), "pico", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: bus i2c0 needs 980 us per cycle, over the 500 us period" in err
    assert hwconfig.main([str(tmp_path / "none.toml"), "pico"]) == 2
    assert "none.toml: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        hwconfig.main(["--help"])
    assert "example: python -m dexlink.hwconfig" in capsys.readouterr().out


def test_shipped_hands_and_boards_are_found_by_name(tmp_path):
    by_name = compile_config("iso22", "pico")
    assert by_name == compile_config(HANDS / "iso22.toml", "pico")
    assert hwconfig.hand_path("iso16") == resources.hands_dir() / "iso16.toml"
    assert [j["name"] for j in hwconfig.load_hand("tendon16")["joints"]][0] == "thumb_cmc_abd"
    mine = tmp_path / "iso16.toml"  # a path, even one named like a shipped hand, is a path
    mine.write_text((HANDS / "iso16.toml").read_text().replace('name = "iso16"', 'name = "mine"'))
    assert compile_config(mine, "pico")["hand"] == "mine"
    with pytest.raises(HwConfigError, match=r"iso99: no such hand \(hands: .*iso16"):
        compile_config("iso99", "pico")
    with pytest.raises(HwConfigError, match=r"nowhere/iso16.toml: no such file"):
        compile_config("nowhere/iso16.toml", "pico")
    assert hwconfig.main(["iso16", "virtual", "-o", str(tmp_path / "c.json")]) == 0


def test_limits_are_the_boards_own(tmp_path):
    """hwconfig restates no limit: its refusals quote the board checker's ranges."""
    board = resources.board_checker()
    source = Path(hwconfig.__file__).read_text()
    assert not re.search(r"^(FORMAT|MAX_JOINTS|INT16|COUPLING_BOUND)\s*=\s*[\d(]", source, re.M)
    text = (HANDS / "iso16.toml").read_text()
    for name, lo, hi in board.LOOP_LIMITS:
        if name == "watchdog_action":
            continue  # named in the hand file ("hold", "torque_off")
        hand = tmp_path / ("%s.toml" % name)
        hand.write_text(re.sub(r"^%s = \d+" % name, "%s = %d" % (name, hi + 1), text, count=1, flags=re.M))
        with pytest.raises(HwConfigError, match=r"loop.%s: must be in %d..%d, got %d"
                           % (name, lo, hi, hi + 1)):
            compile_config(hand, "virtual")
    joints = text.split("[[joints]]")
    many = joints[0] + "".join("[[joints]]" + joints[1] for _ in range(board.MAX_JOINTS + 1))
    hand = tmp_path / "many.toml"
    hand.write_text(many)
    with pytest.raises(HwConfigError, match=r"joints: a hand has 1..%d \[\[joints\]\], got %d"
                       % (board.MAX_JOINTS, board.MAX_JOINTS + 1)):
        compile_config(hand, "virtual")


def test_every_driver_in_the_table_is_a_firmware_class():
    for model, driver in hwconfig.DRIVERS.items():
        path = resources.firmware_dir() / (driver.module.replace(".", "/") + ".py")
        classes = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)}
        assert driver.cls in classes, (model, driver)
        assert driver.bus_kind in hwconfig.BUS_FIELDS
        assert driver.is_encoder == (driver.family == "encoder")


@pytest.mark.parametrize("text, field, problem", [
    ('[joints."thumb_mcp"]\nzero_turn16 = 70000\ndirection = 1\n', 'joints."thumb_mcp".zero_turn16',
     "must be in 0..65535"),
    ('[joints."thumb_mcp"]\nzero_turn16 = 1\ndirection = 2\n', 'joints."thumb_mcp".direction',
     "must be 1 or -1"),
    ('[joints."thumb_mcp"]\ndirection = 1\n', 'joints."thumb_mcp".zero_turn16', "missing"),
    ('[joints."wrist"]\nzero_turn16 = 1\ndirection = 1\n', 'joints."wrist"', "no joint of that name"),
    ('[joints."thumb_mcp"]\nindex = 5\nzero_turn16 = 1\ndirection = 1\n', 'joints."thumb_mcp".index',
     "the hand file changed"),
    ('[joints."thumb_mcp"]\nzero_turn16 = 1\ndirection = 1\nrange_deg = [100.0, 120.0]\n',
     'joints."thumb_mcp".range_deg', "does not overlap"),
    ('[joints."thumb_mcp"\n', "", "not valid TOML"),
    ('hand = "x"\n', "joints", "missing"),
])
def test_a_bad_calibration_file_is_refused_naming_file_and_field(tmp_path, text, field, problem):
    hand = hand_copy(tmp_path)
    cal = hwconfig.calibration_path(hand)
    cal.write_text(text)
    with pytest.raises(hwconfig.HwConfigError) as e:
        hwconfig.compile_config(hand, "virtual")
    assert str(cal) in str(e.value) and field in str(e.value) and problem in str(e.value)


def test_an_explicit_calibration_wins_and_false_means_none(tmp_path):
    hand = hand_copy(tmp_path)
    hwconfig.calibration_path(hand).write_text('[joints."thumb_mcp"]\nzero_turn16 = 1\ndirection = 1\n')
    other = tmp_path / "other.toml"
    other.write_text('[joints."thumb_mcp"]\nzero_turn16 = 2\ndirection = 1\n')
    assert hwconfig.compile_config(hand, "virtual")["joints"][2]["zero_turn16"] == 1
    assert hwconfig.compile_config(hand, "virtual", other)["joints"][2]["zero_turn16"] == 2
    cfg = hwconfig.compile_config(hand, "virtual", False)
    assert "calibration" not in cfg and cfg["joints"][2]["zero_turn16"] != 1
    with pytest.raises(hwconfig.HwConfigError, match="missing.toml: no such file"):
        hwconfig.compile_config(hand, "virtual", tmp_path / "missing.toml")
