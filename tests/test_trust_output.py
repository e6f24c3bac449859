"""Export files honour the umask and keep an existing file's mode (issue 20: exports were 0600)."""

from __future__ import annotations

import os
import stat

from indexer.export.output import write_files


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_new_export_honours_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        [p] = write_files([(tmp_path / "a.edl", "TITLE: x\n")])
        assert _mode(p) == 0o644
        os.umask(0o027)
        [q] = write_files([(tmp_path / "b.edl", "TITLE: y\n")])
        assert _mode(q) == 0o640
    finally:
        os.umask(old)


def test_force_keeps_an_existing_files_mode(tmp_path):
    target = tmp_path / "shared.edl"
    target.write_text("old\n")
    os.chmod(target, 0o664)
    write_files([(target, "new\n")], force=True)
    assert target.read_text() == "new\n" and _mode(target) == 0o664
