"""The Models page in Chromium: upload an archive and a folder with the progress bar
reaching done, see the version's digest and size, which endpoint uses it, the API's
message for a bad archive, and delete a model.

The endpoint that uses the uploaded model is created with `min_replicas: 0`: a revision
names the version (that is what "used by" counts) and no replica starts.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from podium.artifacts.hashing import sha256_tree
from podium.core.errors import Conflict, NotFound
from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_iris_skops(tmp_path_factory.mktemp("listm") / "iris-model")


@pytest.fixture(scope="module")
def archive(model_dir: Path) -> Path:
    path = model_dir.parent / "iris-model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(model_dir / "model.skops", arcname="model.skops")
    return path


@pytest.fixture(scope="module")
def cleanup(server: ServerProcess) -> Iterator[None]:
    yield
    with server.client() as client:
        with contextlib.suppress(NotFound):  # absent when the first test did not run
            client.delete("listm-ep")
        for name in ("listm-iris", "listm-folder", "listm-tree"):
            # deleted by the test already, or still used while listm-ep is removed
            with contextlib.suppress(NotFound, Conflict):
                client.delete_model(name)


def test_upload_an_archive_then_see_its_version_and_users(
    page: Any, server: ServerProcess, archive: Path, cleanup: None
) -> None:
    page.goto("/#/models")
    form = page.get_by_test_id("model-upload")
    form.get_by_label("Model name").fill("listm-iris")
    form.get_by_label("Model file or archive").set_input_files(archive)
    expect(form.get_by_test_id("upload-picked")).to_contain_text("iris-model.tar.gz")
    form.get_by_role("button", name="Upload").click()
    expect(form.get_by_test_id("upload-status")).to_contain_text("Done: listm-iris:1")
    expect(form.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")

    with server.client() as client:
        version = client.model("listm-iris").versions[0]
        client.deploy(
            {
                "name": "listm-ep",
                "model": "listm-iris:1",
                "scaling": {"min_replicas": 0, "max_replicas": 1},
            }
        )
    # the list: latest version, framework (guessed from the files), who uses it
    row = page.get_by_test_id("models-table").locator("tbody tr", has_text="listm-iris")
    expect(row).to_contain_text("v1")
    expect(row).to_contain_text("sklearn")
    expect(row).to_contain_text("listm-ep")  # live: the poll picks up the new endpoint

    form.get_by_role("link", name="Open listm-iris").click()
    versions = page.get_by_test_id("versions-table").locator("tbody tr")
    expect(versions).to_have_count(1)
    expect(versions.first).to_contain_text(version.sha256[:12])
    expect(versions.first.locator(".digest code")).to_have_attribute(
        "title", f"sha256:{version.sha256}"
    )
    size = versions.first.locator("td").nth(1).locator("span")
    expect(size).to_have_attribute("title", f"{version.size_bytes} bytes, {version.files} file(s)")
    expect(versions.first).to_contain_text("upload:iris-model.tar.gz")
    expect(versions.first.get_by_role("link", name="listm-ep")).to_be_visible()

    # a version an endpoint serves cannot be deleted: the API's refusal is shown
    page.errors.allow("409")
    versions.first.get_by_role("button", name="Delete version 1").click()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_role("alert")).to_contain_text("listm-ep")
    expect(versions).to_have_count(1)


@pytest.fixture(scope="module")
def nested_dir(model_dir: Path) -> Path:
    """The iris model plus what a tar writer gets wrong: nested and unicode folders, a
    path of 200+ bytes (ustar prefix split), one name of 100+ bytes that no split helps
    (a PAX `path` record), an empty file and sizes that need padding."""
    root = model_dir.parent / "tree-model"
    root.mkdir()
    (root / "model.skops").write_bytes((model_dir / "model.skops").read_bytes())
    (root / "sub" / "ünïcödé").mkdir(parents=True)
    (root / "sub" / "ünïcödé" / "名前.txt").write_text("x" * 513, encoding="utf-8")
    deep = root.joinpath(*(["level-" + "d" * 20] * 8))
    deep.mkdir(parents=True)
    (deep / "weights.bin").write_bytes(bytes(range(256)) * 5)  # a 216+-byte path
    (root / "sub" / ("長い名前" * 9 + ".json")).write_text("{}", encoding="utf-8")  # 112 bytes
    (root / "empty.txt").write_bytes(b"")
    return root


def test_a_nested_folder_is_unpacked_as_the_cli_pushes_it(
    page: Any, server: ServerProcess, nested_dir: Path, cleanup: None
) -> None:
    files = [p for p in nested_dir.rglob("*") if p.is_file()]
    assert max(len(str(p.relative_to(nested_dir)).encode()) for p in files) > 200
    page.goto("/#/models")
    form = page.get_by_test_id("model-upload")
    form.get_by_label("Model name").fill("listm-tree")
    form.get_by_label("Framework (optional)").fill("sklearn")
    form.get_by_label("Model folder").set_input_files(nested_dir)
    expect(form.get_by_test_id("upload-picked")).to_contain_text(f"{len(files)} files")
    form.get_by_role("button", name="Upload").click()
    expect(form.get_by_test_id("upload-status")).to_contain_text("Done: listm-tree:1")
    with server.client() as client:
        version = client.model("listm-tree").versions[0]
        assert version.files == len(files)
        assert version.size_bytes == sum(p.stat().st_size for p in files)
        assert version.sha256 == sha256_tree(nested_dir).sha256
        # the CLI's push of the same folder (a .tar.gz it packs with tarfile) holds the
        # same tree: the server answers that the latest version already holds it
        pushed = client.push_model(nested_dir, "listm-tree", framework="sklearn")
        assert (pushed.version, pushed.created) == (1, False)


def test_the_tar_writer_handles_8_gib_and_refuses_only_overlong_names(page: Any) -> None:
    page.goto("/#/models")
    expect(page.get_by_test_id("model-upload")).to_be_visible()
    size = 8 * 2**30 + 5  # past ustar's 11 octal digits
    name = "ü" * 60 + ".gguf"  # 125 bytes, no "/" to split at
    headers = page.evaluate(
        """async ([name, size]) => {
            const m = await import("/ui/js/pages/list_common.js");
            const blocks = m.entryHeaders(name, size, 0);
            let refused = "";
            try { m.entryHeaders("a/" + "é".repeat(128), 1, 0); } catch (e) { refused = e.message; }
            return {bytes: blocks.flatMap((b) => Array.from(b)), refused};
        }""",
        [name, size],
    )
    # Python's tarfile (artifacts/unpack.py reads with it) sees the real name and size
    with tarfile.open(fileobj=io.BytesIO(bytes(headers["bytes"])), mode="r:") as tar:
        member = tar.next()
    assert member is not None
    assert (member.name, member.size) == (name, size)
    # the ustar size field alone (GNU base-256) says the same to a reader without PAX
    ustar = tarfile.TarInfo.frombuf(bytes(headers["bytes"][-512:]), "utf-8", "strict")
    assert ustar.size == size
    assert "256 bytes" in headers["refused"] and "at most 255 bytes" in headers["refused"]


def test_upload_a_folder_then_delete_the_model(page: Any, model_dir: Path, cleanup: None) -> None:
    page.goto("/#/models")
    form = page.get_by_test_id("model-upload")
    form.get_by_label("Model name").fill("listm-folder")
    form.get_by_label("Framework (optional)").fill("sklearn")
    form.get_by_label("Model folder").set_input_files(model_dir)
    picked = form.get_by_test_id("upload-picked")
    expect(picked).to_contain_text("1 files, packed as iris-model.tar")
    form.get_by_role("button", name="Upload").click()
    expect(form.get_by_test_id("upload-status")).to_contain_text("Done: listm-folder:1")

    form.get_by_role("link", name="Open listm-folder").click()
    versions = page.get_by_test_id("versions-table").locator("tbody tr")
    expect(versions).to_have_count(1)
    expect(versions.first).to_contain_text("upload:iris-model.tar")
    expect(versions.first).to_contain_text("sklearn")

    page.get_by_role("button", name="Delete model").click()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    table = page.get_by_test_id("models-table")
    expect(table).to_be_visible()
    expect(table.get_by_role("link", name="listm-folder")).to_have_count(0)


def test_a_bad_archive_shows_the_api_message(page: Any, tmp_path: Path) -> None:
    bad = tmp_path / "broken.tar.gz"
    bad.write_bytes(b"this is not a gzip stream")
    page.errors.allow("Failed to load resource")  # the refused upload, shown below
    page.goto("/#/models")
    form = page.get_by_test_id("model-upload")
    form.get_by_label("Model name").fill("listm-bad")
    form.get_by_label("Model file or archive").set_input_files(bad)
    form.get_by_role("button", name="Upload").click()
    # the API's message (artifacts/unpack.py), as it wrote it
    expect(form.get_by_role("alert")).to_contain_text("broken.tar.gz is not a valid")
    expect(form.get_by_test_id("upload-status")).to_have_count(0)


def test_a_read_only_token_sees_no_write_controls(
    page_as: Any, server: ServerProcess, archive: Path, cleanup: None
) -> None:
    with server.client() as admin:
        admin.push_model(archive, "listm-iris")  # the model exists whichever test ran first
        reader = admin.create_token("listm-reader", ["read"]).token
    page = page_as(reader)
    page.goto("/#/models/listm-iris")
    expect(page.get_by_test_id("versions-table").locator("tbody tr").first).to_be_visible()
    expect(page.get_by_role("button", name="Delete model")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete version 1")).to_have_count(0)
    expect(page.get_by_test_id("model-upload")).to_have_count(0)
    page.goto("/#/endpoints")
    expect(page.get_by_role("heading", name="Endpoints")).to_be_visible()
    expect(page.get_by_role("button", name="Download CSV")).to_be_visible()
    expect(page.get_by_role("button", name="Create endpoint")).to_have_count(0)


def test_all_projects_offers_only_the_projects_the_token_may_deploy_to(
    page_as: Any, server: ServerProcess, archive: Path
) -> None:
    with server.client() as admin:
        with contextlib.suppress(Conflict):
            admin.create_project("listm-team")
        token = admin.create_token("listm-deployer", ["deploy"], projects=["listm-team"]).token
    page = page_as(token)
    page.goto("/#/models")  # a fresh session: the switcher says "all projects"
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    form = page.get_by_test_id("model-upload")
    picker = form.get_by_label("Project")
    # not "default" (this token may not deploy there): only its own project
    expect(picker.locator("option")).to_have_text(["listm-team"])
    expect(picker).to_have_value("listm-team")
    form.get_by_label("Model name").fill("listm-teammodel")
    form.get_by_label("Model file or archive").set_input_files(archive)
    form.get_by_role("button", name="Upload").click()
    expect(form.get_by_test_id("upload-status")).to_contain_text("Done: listm-teammodel:1")
    with server.client() as admin:
        assert admin.model("listm-teammodel", project="listm-team").versions[0].version == 1
        admin.delete_model("listm-teammodel", project="listm-team")


def test_a_field_error_is_shown_once(page: Any, archive: Path) -> None:
    page.errors.allow("Failed to load resource")  # the refused upload, shown below
    page.goto("/#/models")
    form = page.get_by_test_id("model-upload")
    form.get_by_label("Model name").fill("Not A Valid Name!")
    form.get_by_label("Model file or archive").set_input_files(archive)
    form.get_by_role("button", name="Upload").click()
    # the API's message sits under the Model name field, and nowhere else
    field = form.locator('[data-field="name"] .field-error')
    expect(field).to_be_visible()
    expect(form.get_by_role("alert")).to_have_count(1)
