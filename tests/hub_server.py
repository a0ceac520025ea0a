"""A local stand-in for the Hugging Face Hub's HTTP API, enough for `huggingface_hub` to log in,
create a repository and upload a folder to it, over real HTTP on 127.0.0.1.

Point the client at it with `HF_ENDPOINT=<server.url>`. It serves the calls `HfApi.whoami`,
`create_repo` and `upload_folder` make, with the Hub's status codes for a missing or wrong
token, an existing repository and a bad commit:

    GET  /api/whoami-v2                                      who the token belongs to
    POST /api/repos/create                                   {name, organization, type, visibility}
    POST /api/validate-yaml                                  a README's YAML header
    POST /api/{type}s/{ns}/{name}/preupload/{revision}       regular or LFS upload, per file
    POST /{prefix}{ns}/{name}.git/info/lfs/objects/batch     Git LFS batch API (basic transfer)
    PUT  /lfs/{oid}, POST /lfs/verify                        the LFS object upload and check
    POST /api/{type}s/{ns}/{name}/commit/{revision}          NDJSON commit: header, files
    GET  /api/{type}s/{ns}/{name}/revision/{revision}        repository info

LFS objects go through the Git LFS batch API; the Hub's newer Xet storage is not spoken here,
so run the client with `HF_HUB_DISABLE_XET=1`. Everything uploaded is kept in `repos`, so a
test can read back exactly what arrived.
"""

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

LFS_PATTERNS = re.compile(r".*\.(safetensors|bin|pt|parquet|arrow|gguf|npy|zip|gz)$")
PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


@dataclass
class Repo:
    kind: str  # model, dataset or space
    id: str  # namespace/name
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)  # summaries, oldest first

    @property
    def sha(self) -> str:
        digest = hashlib.sha1(f"{self.id}:{len(self.commits)}".encode())
        return digest.hexdigest()


def git_blob_sha(content: bytes) -> str:
    """The oid git gives a file, which the client compares to skip unchanged ones."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class FakeHub:
    """The server. `with FakeHub(token=...) as hub:` serves on a free port; `hub.url` is the
    endpoint, `hub.repos` what was uploaded, `hub.requests` every "METHOD path" served."""

    def __init__(self, token: str = "hf_test", user: str = "kahani-tester") -> None:
        self.token = token
        self.user = user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}  # oid (sha256) -> content
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def repo(self, kind: str, repo_id: str) -> Repo | None:
        return self.repos.get((kind, repo_id))

    # -- the API, each returning (status, JSON body) ----------------------------------------

    def whoami(self) -> tuple[int, Any]:
        return 200, {
            "type": "user",
            "name": self.user,
            "fullname": "kahani tester",
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "t", "role": "write"}},
        }

    def create_repo(self, body: dict) -> tuple[int, Any]:
        name, namespace = body.get("name"), body.get("organization") or self.user
        kind = body.get("type") or "model"
        if not name or kind not in PREFIXES:
            return 400, {"error": "Invalid repo name or type"}
        if namespace != self.user:
            return 403, {"error": f"You don't have the rights to create a repo under {namespace}"}
        repo_id = f"{namespace}/{name}"
        url = f"{self.url}/{PREFIXES[kind]}{repo_id}"
        if (kind, repo_id) in self.repos:
            return 409, {"error": f"You already created this {kind} repo", "url": url}
        private = body.get("visibility", "private" if body.get("private") else "public")
        self.repos[(kind, repo_id)] = Repo(kind, repo_id, private == "private")
        return 200, {"url": url, "name": repo_id, "id": repo_id}

    def validate_yaml(self, body: dict) -> tuple[int, Any]:
        content = body.get("content", "")
        header = re.match(r"---\n(.*?)\n---\n", content, flags=re.DOTALL)
        try:
            data = yaml.safe_load(header.group(1)) if header else {}
        except yaml.YAMLError as err:
            return 400, {"error": f"Invalid YAML in README.md: {err}"}
        if data is not None and not isinstance(data, dict):
            return 400, {"error": "The README.md metadata must be a YAML mapping"}
        return 200, {"errors": [], "warnings": []}

    def preupload(self, repo: Repo, body: dict) -> tuple[int, Any]:
        files = []
        for entry in body.get("files", []):
            path = entry["path"]
            lfs = LFS_PATTERNS.match(path) is not None or entry.get("size", 0) > 10_000_000
            stored = repo.files.get(path)
            oid = None
            if stored is not None:
                oid = hashlib.sha256(stored).hexdigest() if lfs else git_blob_sha(stored)
            mode = "lfs" if lfs else "regular"
            files.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return 200, {"files": files, "commitOid": repo.sha}

    def lfs_batch(self, body: dict) -> tuple[int, Any]:
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj["oid"], obj["size"]
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.lfs:
                entry["actions"] = {
                    "upload": {"href": f"{self.url}/lfs/{oid}"},
                    "verify": {"href": f"{self.url}/lfs/verify"},
                }
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}

    def lfs_put(self, oid: str, content: bytes) -> tuple[int, Any]:
        if hashlib.sha256(content).hexdigest() != oid:
            return 400, {"error": "the content does not match its oid"}
        self.lfs[oid] = content
        return 200, {}

    def lfs_verify(self, body: dict) -> tuple[int, Any]:
        content = self.lfs.get(body.get("oid", ""))
        if content is None or len(content) != body.get("size"):
            return 404, {"error": "Object not found"}
        return 200, {}

    def commit(self, repo: Repo, lines: list[dict]) -> tuple[int, Any]:
        summary, added = "", {}
        for line in lines:
            key, value = line.get("key"), line.get("value", {})
            if key == "header":
                summary = value.get("summary", "")
            elif key == "file":
                added[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                content = self.lfs.get(value["oid"])
                if content is None:
                    return 400, {"error": f"LFS object {value['oid']} was never uploaded"}
                added[value["path"]] = content
            else:
                return 400, {"error": f"unknown commit operation {key!r}"}
        repo.files.update(added)
        repo.commits.append(summary)
        prefix = PREFIXES[repo.kind]
        url = f"{self.url}/{prefix}{repo.id}/commit/{repo.sha}"
        return 200, {"commitUrl": url, "commitOid": repo.sha, "pullRequestUrl": None}

    def info(self, repo: Repo) -> tuple[int, Any]:
        siblings = [{"rfilename": path} for path in sorted(repo.files)]
        return 200, {"id": repo.id, "sha": repo.sha, "private": repo.private, "siblings": siblings}


REPO_ROUTE = re.compile(
    r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/(preupload|commit|revision)/.+"
)
LFS_ROUTE = re.compile(r"/(datasets/|spaces/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: tests read hub.requests
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            if status >= 400:
                self.send_header("x-error-message", body.get("error", ""))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def _authorized(self) -> bool:
            return self.headers.get("authorization") == f"Bearer {hub.token}"

        def _route(self, method: str) -> tuple[int, Any]:
            path = unquote(urlsplit(self.path).path)
            raw = self._body()
            with hub.lock:
                hub.requests.append(f"{method} {path}")
            if path.startswith("/lfs/"):  # pre-signed upload URLs: no token, as on S3
                if method == "PUT":
                    return hub.lfs_put(path.removeprefix("/lfs/"), raw)
                return hub.lfs_verify(json.loads(raw or b"{}"))
            if not self._authorized():
                return 401, {"error": "Invalid credentials in Authorization header"}
            if method == "GET" and path == "/api/whoami-v2":
                return hub.whoami()
            if method == "POST" and path == "/api/repos/create":
                return hub.create_repo(json.loads(raw or b"{}"))
            if method == "POST" and path == "/api/validate-yaml":
                return hub.validate_yaml(json.loads(raw or b"{}"))
            if method == "POST" and LFS_ROUTE.fullmatch(path):
                return hub.lfs_batch(json.loads(raw or b"{}"))
            route = REPO_ROUTE.fullmatch(path)
            if route is None:
                return 404, {"error": f"Not found: {method} {path}"}
            kind, repo_id, action = route.group(1)[:-1], route.group(2), route.group(3)
            repo = hub.repo(kind, repo_id)
            if repo is None:
                return 404, {"error": "Repository not found"}
            if action == "preupload" and method == "POST":
                return hub.preupload(repo, json.loads(raw or b"{}"))
            if action == "commit" and method == "POST":
                lines = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
                return hub.commit(repo, lines)
            if action == "revision" and method == "GET":
                return hub.info(repo)
            return 405, {"error": "Method not allowed"}

        def do_GET(self) -> None:
            self._answer(*self._route("GET"))

        def do_POST(self) -> None:
            self._answer(*self._route("POST"))

        def do_PUT(self) -> None:
            self._answer(*self._route("PUT"))

    return Handler
