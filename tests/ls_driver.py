"""Drive a running Label Studio through label-studio-sdk 2.x — run with `.venv-ls/bin/python`, not perr's venv.

One labelling round as a researcher would do it through the API, in two phases:

- `setup`: create a project with our labeling config, attach local-files storage for the media,
  import the tasks `perr annotate export` wrote, and read back what the labeling stream serves.
- `annotate`: create the annotators, post each annotator's annotation (completed_by = that user),
  then export the project as Label Studio JSON plus the users list.

Each phase prints one JSON line with what it did. Plan file for `annotate`:
{"annotators": [username, ...], "posts": [{"annotator", "clip_id", "result", "was_cancelled"?}]};
the first annotator is the server's preset admin, the others are created.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

from label_studio_sdk import LabelStudio


def task_ids(ls: LabelStudio, project: int) -> dict[str, int]:
    return {t.data["clip_id"]: t.id for t in ls.tasks.list(project=project)}


def setup(ls: LabelStudio, args: argparse.Namespace) -> dict:
    project = ls.projects.create(
        title="perr round trip (synthetic clips)", label_config=args.config.read_text()
    )
    storage_id = None
    if args.storage is not None:
        storage_id = ls.import_storage.local.create(
            project=project.id, path=str(args.storage), title="media"
        ).id
    ls.projects.import_tasks(project.id, request=json.loads(args.tasks.read_text()))
    n_predictions = sum(len(t.predictions or []) for t in ls.tasks.list(project=project.id, fields="all"))
    # What the labeling stream hands an annotator: the OCR subtitles must come as a prelabel.
    req = urllib.request.Request(
        f"{args.url}/api/projects/{project.id}/next", headers={"Authorization": f"Token {args.token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        shown = json.load(r)
    proj = ls.projects.get(project.id)
    return {
        "project": project.id,
        "storage": storage_id,
        "tasks": task_ids(ls, project.id),
        "n_predictions": n_predictions,
        "model_version": proj.model_version,
        "show_collab_predictions": proj.show_collab_predictions,
        "next_task": {
            "clip_id": shown["data"]["clip_id"],
            "prelabel": [res for p in shown.get("predictions", []) for res in p.get("result", [])],
        },
    }


def annotate(ls: LabelStudio, args: argparse.Namespace) -> dict:
    plan = json.loads(args.plan.read_text())
    ids = {plan["annotators"][0]: ls.users.whoami().id}
    for name in plan["annotators"][1:]:
        ids[name] = ls.users.create(username=name, email=name, password="perr-test-not-secret").id
    tasks = task_ids(ls, args.project)
    for post in plan["posts"]:
        ls.annotations.create(
            tasks[post["clip_id"]],
            result=post["result"],
            completed_by=ids[post["annotator"]],
            was_cancelled=post.get("was_cancelled", False),
        )
    export = ls.projects.exports.as_json(args.project)
    args.export.write_text(json.dumps(export, indent=1))
    users = [u.dict() for u in ls.users.list()]
    args.users.write_text(json.dumps(users, indent=1, default=str))
    return {"users": ids, "n_exported": len(export)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=["setup", "annotate"])
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--config", type=Path)
    ap.add_argument("--tasks", type=Path)
    ap.add_argument("--storage", type=Path, help="local-files storage path (under the document root)")
    ap.add_argument("--project", type=int)
    ap.add_argument("--plan", type=Path)
    ap.add_argument("--export", type=Path)
    ap.add_argument("--users", type=Path)
    args = ap.parse_args()
    ls = LabelStudio(base_url=args.url, api_key=args.token)
    print(json.dumps(setup(ls, args) if args.phase == "setup" else annotate(ls, args)))


if __name__ == "__main__":
    main()
