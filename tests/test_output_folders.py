"""Output folders cannot lose data: foreign files are never touched, replacement is one rename,
a fault at any step (an injected rename error, a full disk, kill -9) leaves a complete output."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from uqenergy.config.errors import InputError
from uqenergy.outputs import files
from uqenergy.outputs.files import check_output_dir, versions_dir, write_atomically


def _fill(tag: str, nfiles: int = 3):
    def fill(folder: Path) -> None:
        (folder / "figures").mkdir()
        for i in range(nfiles):
            (folder / f"part{i}.json").write_text(json.dumps({"tag": tag, "part": i}))
        (folder / "figures" / "a.png").write_text(tag)

    return fill


def _tag(out: Path) -> str:
    """The tag of the complete output at ``out``; fails on a partial or missing one."""
    tags = {json.loads((out / f"part{i}.json").read_text())["tag"] for i in range(3)}
    tags.add((out / "figures" / "a.png").read_text())
    assert len(tags) == 1 and files.read_manifest(out) is not None and not files.foreign_files(out)
    return tags.pop()


def _versions(out: Path) -> list[str]:
    folder = versions_dir(out)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _snapshot(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): (stat.S_IMODE(p.lstat().st_mode), p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    } | {".": stat.S_IMODE(folder.stat().st_mode)}


def test_a_folder_of_foreign_files_survives_run_with_force(cli, tmp_path, small_study):
    home = tmp_path / "fakehome"
    (home / "Documents").mkdir(parents=True)
    (home / "Documents" / "thesis.tex").write_text("\\section{Results}")
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh" / "id_ed25519").write_text("key")
    (home / ".bashrc").write_text("alias ll='ls -l'")
    before = _snapshot(home)
    code, _, err = cli("run", small_study, "--out", home, "--force", "--draws", "200")
    assert code == 2 and err.count("\n") == 1 and "is not a uqenergy output" in err
    assert _snapshot(home) == before and not versions_dir(home).exists()


def test_user_files_inside_a_previous_output_are_never_deleted(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, _fill("old"))
    (out / "figures" / "annotated.png").write_text("my notes")
    for force in (False, True):
        with pytest.raises(InputError, match=r"holds files uqenergy did not write \(figures/annotated.png\)"):
            write_atomically(out, _fill("new"), force=force)
    assert (out / "figures" / "annotated.png").read_text() == "my notes"
    assert json.loads((out / "part0.json").read_text())["tag"] == "old"


def test_edited_outputs_are_replaced_only_with_force(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, _fill("old"))
    (out / "part1.json").write_text("edited by hand")
    with pytest.raises(InputError, match=r"edited or removed since \(part1.json\)"):
        write_atomically(out, _fill("new"))
    write_atomically(out, _fill("new"), force=True)
    assert _tag(out) == "new"


def test_replacement_is_one_link_switch_and_leaves_one_version(tmp_path):
    out = tmp_path / "out"
    for tag in ("a", "b", "c"):
        write_atomically(out, _fill(tag))
        assert out.is_symlink() and _tag(out) == tag
        assert _versions(out) == [Path(os.readlink(out)).name]
        assert not Path(os.readlink(out)).is_absolute()  # the pair can be moved together


@pytest.mark.parametrize("existing", ["empty folder", "copied output"])
def test_a_real_folder_is_swapped_for_the_link(tmp_path, existing):
    out = tmp_path / "out"
    out.mkdir()
    if existing == "copied output":
        _fill("old")(out)
        files.write_manifest(out)
    write_atomically(out, _fill("new"))
    assert out.is_symlink() and _tag(out) == "new" and len(_versions(out)) == 1


@pytest.mark.parametrize("where", [".", "..", "/", "HOME", "/proc"], ids=["cwd", "parent", "root", "home", "mount"])
def test_protected_folders_are_refused_before_any_work(tmp_path, monkeypatch, cli, small_study, where):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    if where == "/proc" and not os.path.ismount("/proc"):
        pytest.skip("no /proc mount here")
    started = time.monotonic()
    code, _, err = cli("run", small_study, "--out", where.replace("HOME", str(home)), "--force", "--draws", "100000")
    assert code == 2 and err.count("\n") == 1 and "--out: is " in err, err
    assert time.monotonic() - started < 5  # refused before the Monte Carlo
    assert (
        os.listdir(work) == []
        and os.listdir(home) == []
        and sorted(os.listdir(tmp_path))
        == [
            "home",
            "small.toml",
            "work",
        ]
    )


def test_a_link_uqenergy_did_not_make_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "data")
    with pytest.raises(InputError, match="is a link uqenergy did not make"):
        check_output_dir(tmp_path / "out")


def test_an_overlong_name_is_refused_up_front(tmp_path):
    with pytest.raises(InputError, match="is too long"):
        check_output_dir(tmp_path / ("x" * 300))


class FaultyOS:
    """``os`` as the output module sees it, with the ``fail_at``-th file-system change raising EIO."""

    CHANGES = ("replace", "rename", "symlink", "rmdir", "unlink")

    def __init__(self, fail_at: int):
        self.fail_at, self.calls = fail_at, 0

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in self.CHANGES:
            return real

        def change(*args, **kwargs):
            self.calls += 1
            if self.calls == self.fail_at:
                raise OSError(errno.EIO, "Input/output error (injected)")
            return real(*args, **kwargs)

        return change


def _exchange_through(faulty: FaultyOS):
    real = files._exchange

    def exchange(a, b):
        faulty.calls += 1
        if faulty.calls == faulty.fail_at:
            raise OSError(errno.EIO, "Input/output error (injected)")
        real(a, b)

    return exchange


@pytest.mark.parametrize("start", ["link", "copied output", "none", "no exchange"])
def test_a_fault_at_any_step_leaves_a_complete_output(tmp_path, monkeypatch, start):
    out = tmp_path / "out"
    steps = 0
    for fail_at in range(1, 30):
        # a fresh starting state each time: the previous output "old" in the given form
        for leftover in (out, versions_dir(out)):
            if leftover.is_symlink() or leftover.is_file():
                leftover.unlink()
            elif leftover.exists():
                shutil.rmtree(leftover)
        if start == "link":
            write_atomically(out, _fill("old"))
        elif start in ("copied output", "no exchange"):
            out.mkdir()
            _fill("old")(out)
            files.write_manifest(out)
        faulty = FaultyOS(fail_at)
        monkeypatch.setattr(files, "os", faulty)
        if start == "no exchange":
            monkeypatch.setattr(files, "_exchange", _raise_enosys)
        else:
            monkeypatch.setattr(files, "_exchange", _exchange_through(faulty))
        try:
            write_atomically(out, _fill("new"))
            failed = False
        except InputError as err:
            assert "\n" not in err.message and "injected" in err.message
            failed = True
        monkeypatch.undo()
        if start == "none" and failed and not out.exists():
            pass  # nothing was there before, nothing is there now
        else:
            assert _tag(out) == ("old" if failed else "new"), fail_at
        write_atomically(out, _fill("next"))  # the next run tidies whatever the fault left
        assert _tag(out) == "next" and _versions(out) == [Path(os.readlink(out)).name]
        if faulty.calls < fail_at:  # the fault came after the last step: every step was tried
            steps = fail_at
            break
    assert steps > 2


def _raise_enosys(a, b):
    raise OSError(errno.ENOSYS, "renameat2 is not available")


def test_disk_full_while_writing_leaves_the_previous_output(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, _fill("old"))

    def fill_until_full(folder: Path) -> None:
        _fill("new")(folder)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(InputError, match="cannot write output: No space left on device") as err:
        write_atomically(out, fill_until_full)
    assert "\n" not in err.value.message
    assert _tag(out) == "old" and _versions(out) == [Path(os.readlink(out)).name]


def test_a_netcdf_larger_than_the_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    import numpy as np
    import xarray as xr

    dataset = xr.Dataset({"energy_wh": ("draw", np.ones(1000))})
    free = files.FREE_SPACE_MARGIN_BYTES + 100  # bytes: less than the dataset's 8,000 bytes beyond the margin
    monkeypatch.setattr(files.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**12, 10**12 - free, free))
    with pytest.raises(OSError, match=r"no space left on device for samples\.nc"):
        files.write_netcdf(tmp_path / "samples.nc", dataset)
    assert not (tmp_path / "samples.nc").exists()


def test_concurrent_runs_into_one_folder_end_cleanly(tmp_path):
    out = tmp_path / "out"
    errors: list[BaseException] = []

    def run(tag: str) -> None:
        try:
            write_atomically(out, _fill(tag, nfiles=3))
        except InputError as exc:  # refused cleanly is allowed, half-written is not
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) < len(threads) and all("\n" not in e.message for e in errors)
    _tag(out)
    write_atomically(out, _fill("last"))
    assert _versions(out) == [Path(os.readlink(out)).name]


SLOW_FILL = """
import sys, time
from pathlib import Path
from uqenergy.outputs.files import write_atomically

def fill(folder):
    (folder / "part0.json").write_text('{"tag": "killed"}')
    (folder / "started").write_text("")
    time.sleep(60)

write_atomically(Path(sys.argv[1]), fill)
"""


def test_kill_9_mid_run_leaves_the_previous_output_and_the_next_run_cleans_up(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, _fill("old"))
    env = {**os.environ, "PYTHONPATH": str(Path(files.__file__).parents[2])}
    process = subprocess.Popen([sys.executable, "-c", SLOW_FILL, str(out)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not any((v / "started").exists() for v in versions_dir(out).iterdir()):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert _tag(out) == "old" and len(_versions(out)) == 2  # the output, and the killed run's folder
    write_atomically(out, _fill("new"))
    assert _tag(out) == "new" and _versions(out) == [Path(os.readlink(out)).name]


def test_a_folder_of_the_output_replaced_by_a_link_never_leads_the_tool_outside(tmp_path):
    """A link put in place of an output's folder is foreign: the next run refuses, and cleaning up an old version
    never deletes through it, even a user file named like one the manifest lists."""
    out = tmp_path / "out"
    write_atomically(out, _fill("old"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a.png").write_text("my picture")
    shutil.rmtree(out / "figures")
    (out / "figures").symlink_to(mine)
    assert "figures" in files.foreign_files(out)
    with pytest.raises(InputError, match=r"holds files uqenergy did not write \(figures\)"):
        write_atomically(out, _fill("new"), force=True)
    files._remove_by_manifest(out.resolve())  # what replacing the version would do, link and all
    assert (mine / "a.png").read_text() == "my picture"
