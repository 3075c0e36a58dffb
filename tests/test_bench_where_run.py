"""The line every bench prints with its figures: which commit, whether the tree was changed, and the load."""

import os
import subprocess

from pipelines.devtools.bench.where_run import commit, where_run


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_the_commit_is_named_and_a_changed_tree_says_so(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = git(tmp_path, "rev-parse", "--short", "HEAD")
    assert commit(tmp_path) == head
    (tmp_path / "new.txt").write_text("untracked files are not changes to the code measured\n")
    assert commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("two\n")
    assert commit(tmp_path) == head + "+changes"


def test_outside_a_checkout_the_commit_is_unknown_and_the_line_still_printed(tmp_path):
    assert commit(tmp_path / "nowhere") == "unknown"
    line = where_run()
    assert f"{os.cpu_count()} cores" in line and "load average" in line and "commit " in line
