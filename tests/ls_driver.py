"""Drive a running Label Studio through label-studio-sdk 2.x — run with `.venv-ls/bin/python`, not perr's venv.

One labelling round as a researcher would do it through the API: create a project with our labeling
config, attach local-files storage for the media, import the tasks `perr annotate export` wrote,
create the annotators, post each annotator's annotation (completed_by = that user), then export the
project as Label Studio JSON and the users list. Prints one JSON line with what it did.

Plan file: {"annotators": [username, ...], "posts": [{"annotator", "clip_id", "result", "was_cancelled"?}]}.
The first annotator is the server's preset admin; the others are created.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

from label_studio_sdk import LabelStudio


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--tasks", required=True, type=Path)
    ap.add_argument("--storage", type=Path, help="local-files storage path (under the document root)")
    ap.add_argument("--plan", required=True, type=Path)
    ap.add_argument("--export", required=True, type=Path)
    ap.add_argument("--users", required=True, type=Path)
    args = ap.parse_args()

    ls = LabelStudio(base_url=args.url, api_key=args.token)
    plan = json.loads(args.plan.read_text())
    project = ls.projects.create(title="perr round trip (synthetic clips)", label_config=args.config.read_text())
    storage_id = None
    if args.storage is not None:
        storage = ls.import_storage.local.create(project=project.id, path=str(args.storage), title="media")
        storage_id = storage.id
    tasks = json.loads(args.tasks.read_text())
    ls.projects.import_tasks(project.id, request=tasks)

    me = ls.users.whoami()
    ids = {plan["annotators"][0]: me.id}
    for name in plan["annotators"][1:]:
        user = ls.users.create(username=name, email=name, password="perr-test-not-secret")
        ids[name] = user.id

    task_ids = {}
    n_predictions = 0
    for t in ls.tasks.list(project=project.id, fields="all"):
        task_ids[t.data["clip_id"]] = t.id
        n_predictions += len(t.predictions or [])
    # What the labeling stream hands an annotator: the OCR subtitles must come as a prelabel.
    req = urllib.request.Request(f"{args.url}/api/projects/{project.id}/next",
                                 headers={"Authorization": f"Token {args.token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        shown = json.load(r)
    prelabel = [res for p in shown.get("predictions", []) for res in p.get("result", [])]

    for post in plan["posts"]:
        ls.annotations.create(
            task_ids[post["clip_id"]],
            result=post["result"],
            completed_by=ids[post["annotator"]],
            was_cancelled=post.get("was_cancelled", False),
        )

    export = ls.projects.exports.as_json(project.id)
    args.export.write_text(json.dumps(export, indent=1))
    users = [u.dict() if hasattr(u, "dict") else dict(u) for u in ls.users.list()]
    args.users.write_text(json.dumps(users, indent=1, default=str))
    proj = ls.projects.get(project.id)
    print(json.dumps({
        "project": project.id,
        "storage": storage_id,
        "tasks": task_ids,
        "users": ids,
        "n_predictions": n_predictions,
        "model_version": proj.model_version,
        "show_collab_predictions": proj.show_collab_predictions,
        "next_task": {"clip_id": shown["data"]["clip_id"], "prelabel": prelabel},
        "n_exported": len(export),
    }))


if __name__ == "__main__":
    main()
