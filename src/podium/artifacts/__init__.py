"""The model repository's files: what a model version is on disk, and where models come from.

- `hashing`: one sha256 over a file or folder (`sha256_tree` -> `TreeDigest`).
- `unpack`:  `safe_extract` validates every archive entry before writing any; refuses
  path escapes, links, devices, duplicates, bombs (`UnsafeArchive`).
- `store`:   `ArtifactStore` stages (copy / unpack + hash) and atomically commits
  read-only versions under `<artifacts_dir>/models/<name>/<version>/`.
- `detect`:  `detect_framework` guesses the runtime from file names.
- `sources`: `NodeCache.resolve_hf` pins `hf://ORG/NAME[@REVISION]` to a commit and a
  local snapshot folder via huggingface_hub.
- `download`: the download child's parent side (`ChildDownload`: bounded, watched,
  killed), `HubDownload` for `hf://`.
- `s3`, `s3_download`: `s3://BUCKET/PREFIX` listed, pinned by its listing digest and
  fetched into the node cache (boto3, the optional extra `s3`), in a download child.

May do file-system I/O under the folders it is given and, in `sources`, download from the
configured Hugging Face endpoint or S3 store; imports only `podium.core`. The database side of the
model repository (versions, who uses what) lives in `podium.store`.
"""
