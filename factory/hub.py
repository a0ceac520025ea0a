"""Publishing to the Hugging Face Hub: a dataset folder (`factory export --push-to-hub`) or a
model folder with its card (`trainer export --push-to-hub`), in one commit.

Repositories are created private; one that exists keeps its visibility. The token comes from
`$HF_TOKEN` or the login `hf auth login` saved, and is handed to the client in memory: kahani
never writes it anywhere. `$HF_ENDPOINT` points the client at another Hub (the tests' stand-in).
"""

from pathlib import Path
from typing import Literal

from factory.errors import KahaniError

RepoKind = Literal["model", "dataset"]
# What a dataset repository needs: the card (whose `configs` name the parquet files), the
# parquet shards, and the JSONL and OpenAI fine-tuning copies. The `save_to_disk` arrow files
# are for `load_from_disk` on this machine.
DATASET_FILES = ["README.md", "data/*.parquet", "jsonl/*.jsonl", "openai/*.jsonl"]


def hub_token() -> str:
    """$HF_TOKEN, else the token of `hf auth login`; KahaniError when there is neither."""
    import os

    import huggingface_hub

    token = os.environ.get("HF_TOKEN") or huggingface_hub.get_token()
    if not token:
        raise KahaniError(
            "--push-to-hub needs a Hugging Face token: set HF_TOKEN or run `hf auth login`"
        )
    return token


def push_folder(
    folder: Path, repo: str, kind: RepoKind, files: list[str], message: str, private: bool = True
) -> str:
    """Upload the `files` patterns of `folder` to the Hub repository `repo` (created if
    missing, private unless `private` is False); returns the repository's URL."""
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        huggingface_hub.utils.validate_repo_id(repo)
    except HFValidationError:
        raise KahaniError(
            f"--push-to-hub expects a repository id like user/name, got {repo!r}"
        ) from None
    api = huggingface_hub.HfApi(token=hub_token())
    try:
        user = api.whoami()["name"]
        url = api.create_repo(repo, repo_type=kind, private=private, exist_ok=True)
        api.upload_folder(
            folder_path=folder,
            repo_id=repo,
            repo_type=kind,
            allow_patterns=files,
            commit_message=message,
        )
    except HfHubHTTPError as err:
        raise KahaniError(_hub_error(err, repo)) from None
    except Exception as err:
        # The client's HTTP library (httpx, or its successor httpx2) raises its own errors
        # for a connection that fails or breaks.
        if isinstance(err, OSError) or type(err).__module__.split(".")[0].startswith("httpx"):
            where = huggingface_hub.constants.ENDPOINT
            raise KahaniError(f"cannot reach the Hugging Face Hub at {where}: {err}") from None
        raise
    print(f"pushed   {url} (as {user})")
    return str(url)


def _hub_error(err, repo: str) -> str:
    status = err.response.status_code if err.response is not None else None
    if status == 401:
        return "the Hugging Face Hub refused the token (HTTP 401); check HF_TOKEN or hf auth login"
    if status == 403:
        return f"the token may not write to {repo} (HTTP 403); use your own name or an org of yours"
    detail = (err.server_message or str(err)).strip().splitlines()[0][:300]
    return f"the Hugging Face Hub answered HTTP {status} for {repo}: {detail}"


def push_dataset(dataset_dir: Path, repo: str) -> str:
    """A `factory export` folder as a Hub dataset repository, its card included."""
    if not (dataset_dir / "README.md").is_file():
        raise KahaniError(f"{dataset_dir} has no README.md dataset card; run `factory export`")
    return push_folder(dataset_dir, repo, "dataset", DATASET_FILES, "Upload dataset with kahani")
