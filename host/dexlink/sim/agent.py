# The virtual board's "ROM": runs inside the MicroPython Unix interpreter, started by the
# supervisor (dexlink.sim.supervisor) for every boot.
#
#   micropython agent.py MODE FS_DIR BOARD_DIR CMD_FD FAULT_FD NOTE_FD FS_MODE
#   MODE: friendly | raw; the fds: commands from the supervisor, injected faults, notes back;
#   FS_MODE: rw | ro (a board whose filesystem refuses writes)
#
# It makes the interpreter look like a board: the board filesystem directory mounted at
# "/", the simulated rig's modules on the path like frozen modules, boot.py then main.py
# (main.py only after a reset into the friendly REPL, as pyexec does), then it waits for
# the code the supervisor's REPL collected and runs it in one persistent namespace.
# The REPL itself (prompts, raw and raw-paste protocols) lives in the supervisor.
import io
import os
import sys
import time

import machine
import micropython
import vconsole
import vfaults
import vfs
import vnotes

AGENT_NAME = "agent.py"
FROZEN = "/.sim"  # where the simulated rig's modules appear (read-only, never flashed)


class _Machine:
    """`machine` with the reset functions a board has: the supervisor does the resets."""

    def __init__(self, base):
        self._base = base

    def __getattr__(self, name):
        return getattr(self._base, name)

    def reset(self):
        vconsole.note(vnotes.NOTE_HARD_RESET)
        _wait_forever()  # the supervisor ends this interpreter

    def soft_reset(self):
        raise SystemExit


class _Micropython:
    """`micropython` whose kbd_intr works as on a board: kbd_intr(-1) makes Ctrl-C data.

    (The Unix port's own kbd_intr(-1) would drop its SIGINT handler: the supervisor's
    next Ctrl-C would kill the interpreter instead of being data.)
    """

    def __init__(self, base):
        self._base = base

    def __getattr__(self, name):
        return getattr(self._base, name)

    def kbd_intr(self, char):
        if char == -1:
            vconsole.claim()
        else:
            vconsole.release()


class _Os:
    """`os` whose listings of "/" leave out the rig's mount point: it is not on the board."""

    def __init__(self, base):
        self._base = base

    def __getattr__(self, name):
        return getattr(self._base, name)

    def _at_root(self, path):
        return path == "/" or (path in ("", ".") and self._base.getcwd() == "/")

    def ilistdir(self, path=""):
        hide = self._at_root(path)
        for entry in self._base.ilistdir(path):
            if not (hide and entry[0] == FROZEN[1:]):
                yield entry

    def listdir(self, path=""):
        return [entry[0] for entry in self.ilistdir(path)]


def mount_board_fs(fs_dir, board_dir, readonly):
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(fs_dir), "/", readonly=readonly)
    vfs.mount(vfs.VfsPosix(board_dir), FROZEN, readonly=True)
    os.chdir("/")
    sys.path[:] = ["", "/lib", FROZEN]


def traceback_text(e):
    s = io.StringIO()
    sys.print_exception(e, s)
    # Drop this file's own frame: a board's traceback starts at the user's code.
    lines = [ln for ln in s.getvalue().split("\n")
             if not (ln.startswith('  File "') and AGENT_NAME in ln)]
    return "\n".join(lines)


def run(code, namespace, kind, name, boot=False):
    """Run code; return (traceback text or '', soft_reset_requested).

    boot: a boot script, which (as pyexec does) is compiled with Ctrl-C off and becomes
    interruptible as it starts: nothing may run between the note and its first line.
    """
    try:
        vfaults.poll()
        code = compile(code, name, kind)
        if boot:
            vconsole.note(vnotes.NOTE_RUNNING)
        exec(code, namespace)
    except SystemExit:
        return "", True
    except BaseException as e:  # KeyboardInterrupt included: the REPL prints it
        return traceback_text(e), False
    return "", False


def run_file(path, namespace):
    try:
        with open(path) as f:
            code = f.read()
    except OSError:
        return False
    text, soft = run(code, namespace, "exec", path, boot=True)
    if text:
        sys.stdout.write(text)  # a board prints a boot script's traceback on its console
    if soft:
        vconsole.note(vnotes.NOTE_SOFT_RESET)
        _wait_forever()
    return True


def _wait_forever():
    while True:
        try:
            time.sleep(3600)
        except KeyboardInterrupt:
            pass


class Commands:
    """Reads the supervisor's command records: kind (1 byte), u32 length, source."""

    def __init__(self, fd):
        self._f = open(fd, "rb")
        self._head = bytearray(5)

    def _read_exactly(self, buf):
        mv = memoryview(buf)
        got = 0
        while got < len(buf):
            try:
                n = self._f.readinto(mv[got:])
            except KeyboardInterrupt:
                continue  # a late Ctrl-C: the command being read is still whole
            if not n:
                raise EOFError
            got += n

    def next(self):
        self._read_exactly(self._head)
        h = self._head
        n = h[1] | (h[2] << 8) | (h[3] << 16) | (h[4] << 24)
        body = bytearray(n)
        self._read_exactly(body)
        return chr(h[0]), bytes(body).decode()


def banner():
    v = sys.implementation.version
    tag = "v%d.%d.%d" % v[:3] + ("-" + v[3] if len(v) > 3 and v[3] else "")
    return "MicroPython %s on %s; dexlink virtual board with the Unix port" % (
        tag, sys.version.split(" on ")[-1])


def main():
    mode, fs_dir, board_dir, cmd_fd, fault_fd, note_fd, fs_mode = sys.argv[1:8]
    vconsole.attach(int(note_fd))
    vfaults.attach(int(fault_fd))
    commands = Commands(int(cmd_fd))
    mount_board_fs(fs_dir, board_dir, fs_mode == "ro")
    sys.modules["machine"] = _Machine(machine)
    sys.modules["os"] = _Os(os)
    sys.modules["micropython"] = _Micropython(micropython)
    namespace = {"__name__": "__main__"}
    vconsole.note(vnotes.NOTE_BANNER, banner().encode())
    try:
        run_file("boot.py", namespace)
        if mode == "friendly":
            run_file("main.py", namespace)
    except KeyboardInterrupt:
        pass  # a Ctrl-C between the scripts
    done = vnotes.NOTE_BOOTED, b""
    while True:
        try:
            if done:
                # A Ctrl-C racing the end of a command may repeat this note: the
                # supervisor ignores a second one.
                vconsole.note(*done)
                done = None
            kind, code = commands.next()
            vconsole.note(vnotes.NOTE_RUNNING)
            text, soft = run(code, namespace, "single" if kind == "s" else "exec", "<stdin>")
            if soft:
                vconsole.note(vnotes.NOTE_SOFT_RESET)
                _wait_forever()
            done = vnotes.NOTE_DONE, text.encode()[-4000:]
        except KeyboardInterrupt:
            continue  # a Ctrl-C that arrived as a command ended
        except EOFError:
            return  # the supervisor is gone


main()
