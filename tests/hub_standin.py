"""A Hugging Face Hub stand-in on loopback, for the prefetch tests.

It serves local model folders under the hub's URL layout, the parts that
``huggingface_hub.snapshot_download`` uses:

- ``GET /api/models/<repo>/revision/<rev>``: the repository at a branch, tag or commit (its ``sha``);
- ``GET /api/models/<repo>/tree/<commit>``: the file listing;
- ``HEAD`` and ``GET /<repo>/resolve/<rev>/<file>``: a file, with ``X-Repo-Commit`` and ``ETag``.

An unknown revision answers 404 with ``X-Error-Code: RevisionNotFound`` (and an unknown repository
``RepoNotFound``), as the hub does. Every request is counted, so a test can assert what was
downloaded: ``server.requests`` lists (method, path), ``server.downloads()`` the file GETs. Point
``HF_ENDPOINT`` at ``server.url``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Repo:
    """One repository: ``refs`` (branch or tag -> commit) and ``commits`` (commit -> folder)."""

    def __init__(self, refs: dict[str, str], commits: dict[str, Path]):
        self.refs, self.commits = refs, {c: Path(f) for c, f in commits.items()}

    def commit(self, revision: str) -> str | None:
        revision = self.refs.get(revision, revision)
        return revision if revision in self.commits else None

    def files(self, commit: str) -> list[str]:
        folder = self.commits[commit]
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _oid(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id


class HubStandIn:
    """``with HubStandIn({"org/name": Repo(...)}) as hub: ... hub.url ...``"""

    def __init__(self, repos: dict[str, Repo]):
        self.repos, self.requests = repos, []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                standin._serve(self, body=False)

            def do_GET(self):
                standin._serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def downloads(self) -> list[str]:
        """Paths of the file bodies served (GET of a ``resolve`` URL)."""
        return [path for method, path in self.requests if method == "GET" and "/resolve/" in path]

    # ------------------------------------------------------------------ routing
    def _find(self, parts: list[str]):
        """(repo id, repo, rest of the path) for a path that starts with a repo id (org/name)."""
        repo_id = "/".join(parts[:2])
        return repo_id, self.repos.get(repo_id), parts[2:]

    def _serve(self, handler, body: bool):
        path = urllib.parse.urlsplit(handler.path).path
        self.requests.append((handler.command, path))
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["api", "models"]:
            repo_id, repo, rest = self._find(parts[2:])
            if repo is None:
                return self._error(handler, 404, "RepoNotFound", f"Repository {repo_id} not found")
            if len(rest) >= 2 and rest[0] in ("revision", "tree"):
                commit = repo.commit("/".join(rest[1:]) if rest[0] == "revision" else rest[1])
                if commit is None:
                    return self._error(handler, 404, "RevisionNotFound", f"Invalid rev id: {rest[1]}")
                if rest[0] == "revision":
                    info = {"id": repo_id, "modelId": repo_id, "sha": commit, "private": False, "disabled": False,
                            "gated": False, "tags": [], "downloads": 0, "likes": 0,
                            "siblings": [{"rfilename": f} for f in repo.files(commit)]}
                    return self._json(handler, info, body)
                folder = repo.commits[commit]
                listing = [{"type": "file", "path": f, "size": (folder / f).stat().st_size, "oid": _oid(folder / f)}
                           for f in repo.files(commit)]
                return self._json(handler, listing, body)
            return self._error(handler, 404, "EntryNotFound", "unknown API route")
        repo_id, repo, rest = self._find(parts)
        if repo is None or len(rest) < 3 or rest[0] != "resolve":
            return self._error(handler, 404, "RepoNotFound", f"Repository {repo_id} not found")
        commit = repo.commit(rest[1])
        if commit is None:
            return self._error(handler, 404, "RevisionNotFound", f"Invalid rev id: {rest[1]}")
        file = repo.commits[commit] / "/".join(rest[2:])
        if not file.is_file():
            return self._error(handler, 404, "EntryNotFound", f"{'/'.join(rest[2:])} does not exist")
        data = file.read_bytes()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("ETag", f'"{_oid(file)}"')
        handler.send_header("X-Repo-Commit", commit)
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    @staticmethod
    def _json(handler, payload, body: bool):
        data = json.dumps(payload).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    @staticmethod
    def _error(handler, status: int, code: str, message: str):
        data = json.dumps({"error": message}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("X-Error-Code", code)
        handler.send_header("X-Error-Message", message)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)
