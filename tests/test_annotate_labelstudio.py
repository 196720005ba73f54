"""A real labelling round through a real Label Studio server (label-studio 1.23.2, SDK 2.1.2).

`perr annotate export` → Label Studio project (our config, local-files storage, tasks with the OCR
prediction) → annotator A labels one clip and discards another by clicking in headless Chromium,
after checking what the form shows; then three annotators post the rest through the API (agreements,
disagreements, a tie, a discard, a discard tie, one malformed annotation, one skipped task) → JSON export →
`perr annotate import` and `perr annotate agreement` through the real `perr` entry point. Expected
figures are worked out by hand below from the posted labels. The clips are synthetic (ffmpeg testsrc).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cdp import Browser, chromium_binary
from conftest import ffmpeg
from labelstudio import require_label_studio, start_label_studio
from perr.annotate import schema
from perr.labels import DEFINITIONS, FINE, FINE_TO_COARSE
from perr.manifest import Character, Clip, SubtitleEvent, load_manifest, write_manifest

pytestmark = [pytest.mark.services, pytest.mark.video, pytest.mark.slow, pytest.mark.timeout(600)]

PERR = str(Path(sys.executable).with_name("perr"))
A, B, C = "annotator1@perr.test", "annotator2@perr.test", "annotator3@perr.test"  # A is the preset admin


def make_media(root: Path) -> None:
    """A synthetic episode and three synthetic face thumbnails."""
    media = root / "media"
    media.mkdir(parents=True)
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=10",
        "-t",
        "12",
        "-pix_fmt",
        "yuv420p",
        str(media / "synthetic_episode.mp4"),
    )
    for k, color in enumerate(("red", "green", "blue")):
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            f"color=c={color}:s=48x48",
            "-frames:v",
            "1",
            str(media / f"synthetic_face{k}.jpg"),
        )


def make_manifest(root: Path) -> Path:
    clips = []
    for k in range(1, 10):
        clips.append(
            Clip(
                clip_id=f"k{k}",
                video="media/synthetic_episode.mp4",
                drama="synthetic",
                episode="e1",
                start=float(k - 1),
                end=float(k + 1),
                characters=[
                    Character(id=c, thumbnail=f"media/synthetic_face{i}.jpg") for i, c in enumerate("abc")
                ],
                candidates=["a", "b", "c"],
                subtitles=[SubtitleEvent(start=k - 0.5, end=k + 0.5, text=f"ocr line {k}")],
                status="proposal",
            )
        )
    return write_manifest(root / "proposals.jsonl", clips)


def ann(
    label: str | None = None,
    pair: str | None = None,
    subs: list[str] | None = None,
    discard: str | None = None,
) -> list[dict]:
    """A Label Studio result list as the UI would post it for our config."""
    res = []
    if discard is not None:
        res.append(
            {
                "from_name": schema.DISCARD,
                "to_name": "video",
                "type": "choices",
                "value": {"choices": [schema.DISCARD_VALUE]},
            }
        )
        res.append(
            {
                "from_name": schema.DISCARD_REASON,
                "to_name": "video",
                "type": "textarea",
                "value": {"text": [discard]},
            }
        )
    if pair is not None:
        res.append(
            {
                "from_name": schema.PAIR,
                "to_name": "video",
                "type": "choices",
                "value": {"choices": list(pair)},
            }
        )
    if label is not None:
        res.append(
            {"from_name": schema.LABEL, "to_name": "video", "type": "choices", "value": {"choices": [label]}}
        )
    if subs is not None:
        res.append(
            {"from_name": schema.SUBTITLES, "to_name": "video", "type": "textarea", "value": {"text": subs}}
        )
    return res


SUBMIT = "Array.from(document.querySelectorAll('button')).find(b => b.innerText.trim() === 'Submit')"
WARNINGS = "Array.from(document.querySelectorAll('.ant-modal')).map(m => m.innerText).join(' | ')"


def _annotations(ls, task: int) -> list[dict]:
    return json.loads(ls.get(f"/api/tasks/{task}/annotations/"))


def label_in_browser(ls, profile: Path, project: int, tasks: dict[str, int]) -> dict:
    """Be annotator A in headless Chromium: log in, read the form Label Studio renders for clip k3,
    try to submit it empty, then label k3 (pair a+b, mild) and discard k6 (with a reason) by clicking."""
    browser = Browser(profile)
    seen: dict = {}

    def open_task(task: int) -> None:
        browser.goto(f"{ls.url}/projects/{project}/data?task={task}")
        # Ready when the candidate faces have loaded, the OCR prelabel, the video player and Submit are there.
        browser.wait_for(
            "Array.from(document.images).filter(i => i.src.includes('synthetic_face') && i.naturalWidth > 0)"
            f".length === 3 && document.querySelectorAll('[data-testid=htx-textbox-content]').length > 0 && !!{SUBMIT}"
            " && Array.from(document.querySelectorAll('video')).some(v => (v.currentSrc || v.src))",
            timeout=120,
        )

    def submit_and_wait(task: int) -> list[dict]:
        browser.js(f"{SUBMIT}.click(); true")
        deadline = time.monotonic() + 60
        while not (anns := _annotations(ls, task)) and time.monotonic() < deadline:
            time.sleep(0.5)
        return anns

    try:
        browser.goto(ls.url + "/user/login/")
        browser.wait_for("document.querySelector('input[name=password]') !== null")
        browser.js(
            f"document.querySelector('input[name=email]').value = {json.dumps(ls.username)};"
            f"document.querySelector('input[name=password]').value = {json.dumps(ls.password)};"
            "document.querySelector('form').submit(); true"
        )
        browser.wait_for("!location.pathname.startsWith('/user/login')")

        open_task(tasks["k3"])
        seen["page"] = browser.js("""({
            images: Array.from(document.images).map(i => [i.src, i.naturalWidth]),
            subtitle_lines: Array.from(document.querySelectorAll('[data-testid=htx-textbox-content]'))
                .map(e => e.innerText.trim()),
            videos: Array.from(document.querySelectorAll('video')).map(v => v.currentSrc || v.src),
            text: document.body.innerText,
        })""")
        # An empty form is refused with our message, and nothing is saved.
        browser.js(f"{SUBMIT}.click(); true")
        seen["empty_warning"] = browser.wait_for(WARNINGS, timeout=30)
        time.sleep(1)
        seen["empty_saved"] = len(_annotations(ls, tasks["k3"]))
        browser.js("Array.from(document.querySelectorAll('.ant-modal button')).forEach(b => b.click()); true")
        # Pick characters a and b and the class "mild" (choice inputs are named by their value).
        browser.js(
            "['a', 'b', 'mild'].forEach(n => document.querySelector(`input[name='${n}']`).click()); true"
        )
        seen["k3"] = submit_and_wait(tasks["k3"])

        open_task(tasks["k6"])
        browser.js("document.querySelector('input[name=discard]').click(); true")
        browser.wait_for("!!document.querySelector('[placeholder^=\"why is this clip\"]')")
        browser.js("document.querySelector('[placeholder^=\"why is this clip\"]').focus(); true")
        browser.call("Input.insertText", browser.session, text="no salient pair")
        seen["k6"] = submit_and_wait(tasks["k6"])
        return seen
    finally:
        browser.close()


# (clip, annotator, result) in posting order; created_at follows this order.
POSTS = [
    ("k1", A, ann("hostile", "ab")),
    ("k1", B, ann("hostile", "ba")),
    ("k2", B, ann("hostile", "ab", ["[1.50-2.50] B's version"])),  # first, but disagrees with the majority
    ("k2", A, ann("tense", "ab", ["[1.50-2.50] A's version", "[2.60-3.00] added by A"])),
    ("k2", C, ann("tense", "ab", ["[1.50-2.50] C's version"])),
    # ("k3", A): mild, pair a+b — clicked in the browser (label_in_browser)
    ("k3", B, ann("intimate", "ab")),
    ("k4", A, ann("neutral", "ab")),
    ("k4", B, ann("neutral", "ab")),
    ("k4", C, ann("neutral", "ac")),
    ("k5", A, ann("mild", "bc")),
    ("k5", B, ann("tense", "bc")),
    # ("k6", A): discard, "no salient pair" — clicked in the browser
    ("k6", B, ann(discard="three people argue")),
    ("k7", A, ann("intimate", "ab")),
    ("k7", B, ann(discard="not an interaction")),
    ("k8", A, ann("neutral", "ab")),
    ("k8", B, ann("neutral", "a")),  # malformed: one character picked
    ("k9", A, []),  # skipped in the UI (was_cancelled)
]


def test_label_studio_round_trip(tmp_path: Path) -> None:
    require_label_studio()
    chromium_binary()  # skip early (with the reason) rather than after starting the server
    make_media(tmp_path)
    manifest = make_manifest(tmp_path)
    out = tmp_path / "ls-export"
    subprocess.run(
        [PERR, "annotate", "export", str(manifest), "--out", str(out), "--document-root", str(tmp_path)],
        check=True,
    )
    tasks = json.loads((out / "tasks.json").read_text())
    assert tasks[0]["data"]["video"] == "/data/local-files/?d=media/synthetic_episode.mp4#t=0.000,2.000"

    plan = {
        "annotators": [A, B, C],
        "posts": [
            {"clip_id": clip, "annotator": who, "result": res, "was_cancelled": not res}
            for clip, who, res in POSTS
        ],
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    export, users = tmp_path / "export.json", tmp_path / "users.json"

    ls = start_label_studio(tmp_path / "run", document_root=tmp_path)
    try:
        setup = ls.drive(
            "setup",
            "--config",
            out / "labeling_config.xml",
            "--tasks",
            out / "tasks.json",
            "--storage",
            tmp_path / "media",
        )
        # Media are served by Label Studio from the local-files storage, byte for byte.
        video = ls.get("/data/local-files/?d=media/synthetic_episode.mp4")
        thumb = ls.get("/data/local-files/?d=media/synthetic_face2.jpg")
        ui = label_in_browser(ls, tmp_path / "chromium", setup["project"], setup["tasks"])
        done = ls.drive(
            "annotate",
            "--project",
            setup["project"],
            "--plan",
            tmp_path / "plan.json",
            "--export",
            export,
            "--users",
            users,
        )
    finally:
        ls.stop()
    assert ls.proc.returncode is not None
    assert video == (tmp_path / "media/synthetic_episode.mp4").read_bytes()
    assert thumb == (tmp_path / "media/synthetic_face2.jpg").read_bytes()
    task_of = setup["tasks"]
    assert len(task_of) == 9 and done["n_exported"] == 9
    # The OCR subtitles arrive as predictions of one model version, which Label Studio shows as prelabels.
    assert setup["n_predictions"] == 9 and setup["model_version"] == schema.OCR_MODEL_VERSION
    assert setup["show_collab_predictions"] is True
    # The task Label Studio serves to an annotator carries the OCR lines as an editable textarea prelabel.
    shown = setup["next_task"]
    k_shown = int(shown["clip_id"][1:])
    assert [(r["from_name"], r["type"], r["value"]["text"]) for r in shown["prelabel"]] == [
        (schema.SUBTITLES, "textarea", [f"[{k_shown - 0.5:.2f}-{k_shown + 0.5:.2f}] ocr line {k_shown}"])
    ]
    # What an annotator sees in the browser for clip k3 (rendered by Label Studio's own frontend):
    # the three candidate faces loaded through local files, the OCR line pre-filled in the subtitle box,
    # the five classes with their definitions, the discard choice and the clip's interval.
    page = ui["page"]
    faces = sorted(
        (src.rsplit("=", 1)[-1], width) for src, width in page["images"] if "synthetic_face" in src
    )
    assert faces == [(f"media/synthetic_face{i}.jpg", 48) for i in range(3)]
    assert "[2.50-3.50] ocr line 3" in page["subtitle_lines"]
    for c in FINE:
        assert f"{c} ({FINE_TO_COARSE[c]}): {DEFINITIONS[c]}" in page["text"]
    assert "discard" in page["text"] and "watch 2.00 s – 4.00 s" in page["text"]
    assert page["videos"] and "synthetic_episode.mp4" in page["videos"][0]
    # Submitting the empty form is refused (pair and label are required unless discarded).
    assert "Pick the two interacting characters" in ui["empty_warning"] and ui["empty_saved"] == 0
    # What the clicks saved: the pair, the class, the untouched OCR prelabel; a discard needs only its reason.
    (k3,) = ui["k3"]
    assert {r["from_name"]: r["value"] for r in k3["result"]} == {
        schema.PAIR: {"choices": ["a", "b"]},
        schema.LABEL: {"choices": ["mild"]},
        schema.SUBTITLES: {"text": ["[2.50-3.50] ocr line 3"]},
    }
    (k6,) = ui["k6"]
    assert {r["from_name"]: r["value"] for r in k6["result"]} == {
        schema.DISCARD: {"choices": [schema.DISCARD_VALUE]},
        schema.DISCARD_REASON: {"text": ["no salient pair"]},
        schema.SUBTITLES: {"text": ["[5.50-6.50] ocr line 6"]},
    }

    # ---- import: adjudication through the real CLI
    final_path = tmp_path / "final.jsonl"
    res = subprocess.run(
        [
            PERR,
            "annotate",
            "import",
            str(export),
            "--manifest",
            str(manifest),
            "--out",
            str(final_path),
            "--problems",
            str(tmp_path / "problems.json"),
        ],
        capture_output=True,
        text=True,
    )
    # k8's malformed pair and k9's empty annotation are problems: the rest is imported, exit status 1.
    assert res.returncode == 1, res.stderr
    final = {c.clip_id: c for c in load_manifest(final_path)}
    assert len(final) == 9

    def check(cid, status, label, pair, subs=None):
        c = final[cid]
        assert (c.status, c.label, c.pair) == (status, label, pair), (cid, c.status, c.label, c.pair, c.notes)
        if subs is not None:
            assert [(s.start, s.end, s.text) for s in c.subtitles] == subs, cid

    k = float
    check("k1", "annotated", "hostile", ("a", "b"), [(k(0.5), k(1.5), "ocr line 1")])  # no edit: OCR stays
    # 2 of 3 say tense; subtitles from the first annotator agreeing with it (A), not from B who posted first.
    check("k2", "annotated", "tense", ("a", "b"), [(1.5, 2.5, "A's version"), (2.6, 3.0, "added by A")])
    check("k3", "review", None, ("a", "b"))
    assert "label tie" in final["k3"].notes
    check("k4", "annotated", "neutral", ("a", "b"))  # pair ab 2 : ac 1
    check("k5", "review", None, ("b", "c"))
    check("k6", "discarded", None, None)
    assert "no salient pair" in final["k6"].notes and "three people argue" in final["k6"].notes
    check("k7", "review", "intimate", ("a", "b"))
    assert "discard tie 1/2" in final["k7"].notes
    check("k8", "annotated", "neutral", ("a", "b"))  # B's malformed annotation left out
    check("k9", "proposal", None, None, [(k(8.5), k(9.5), "ocr line 9")])  # skipped: unchanged

    problems = json.loads((tmp_path / "problems.json").read_text())
    assert sorted((p["task_id"], p["field"]) for p in problems) == sorted(
        [(str(task_of["k8"]), "pair"), (str(task_of["k9"]), "annotations")]
    )
    assert f"task {task_of['k8']} annotation" in res.stderr and "pair" in res.stderr

    # ---- agreement through the real CLI, windows of 2 items in time order
    agr_path = tmp_path / "agreement.json"
    res = subprocess.run(
        [
            PERR,
            "annotate",
            "agreement",
            str(export),
            "--users",
            str(users),
            "--by",
            "2",
            "--out",
            str(agr_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    agr = json.loads(agr_path.read_text())
    # Items with >= 2 labels: k1 (A,B), k2 (B,A,C), k3 (A,B), k4 (A,B,C), k5 (A,B); k6 discards,
    # k7 and k8 have one label, k9 none.
    assert agr["n_items_multi"] == 5 and agr["labels_per_item"] == {"1": 2, "2": 3, "3": 2}
    assert sorted(agr["annotators"].values()) == [A, B, C]
    # Fine per item: k1 1, k2 1/3 (only A-C agree), k3 0, k4 1, k5 0 → 7/15.
    # Coarse: k1..k4 agree (hostile/tense both negative, mild/intimate both positive), k5 not → 4/5.
    assert agr["percent_agreement"]["fine"] == pytest.approx(7 / 15)
    assert agr["percent_agreement"]["coarse"] == pytest.approx(4 / 5)
    # Fleiss fine: P̄ = 7/15; totals hostile 3, tense 3, mild 2, intimate 1, neutral 3 of 12 →
    # P_e = 32/144 = 2/9; κ = (7/15 − 2/9)/(7/9) = 11/35.
    # Fleiss coarse: P̄ = 4/5; negative 6, positive 3, neutral 3 of 12 → P_e = 3/8; κ = (17/40)/(5/8) = 17/25.
    assert agr["fleiss_kappa"]["fine"] == pytest.approx(11 / 35)
    assert agr["fleiss_kappa"]["coarse"] == pytest.approx(17 / 25)
    # Cohen A×B on k1..k5: A = hostile,tense,mild,neutral,mild; B = hostile,hostile,intimate,neutral,tense.
    # fine p_o = 2/5, p_e = 4/25 → κ = 2/7; coarse p_o = 4/5, p_e = 9/25 → κ = 11/16.
    # A×C on k2,k4 agree on both → 1. B×C on k2,k4: fine p_o = 1/2, p_e = 1/4 → 1/3; coarse 1.
    pairs = {(r["a"], r["b"]): r for r in agr["cohen_kappa"]}
    expected = {
        (A, B): (5, 2 / 7, 11 / 16, 2 / 5, 4 / 5),
        (A, C): (2, 1.0, 1.0, 1.0, 1.0),
        (B, C): (2, 1 / 3, 1.0, 1 / 2, 1.0),
    }
    assert set(pairs) == set(expected)
    for key, (n, kf, kc, pf, pc) in expected.items():
        r = pairs[key]
        assert r["n_items"] == n, key
        assert (r["kappa_fine"], r["kappa_coarse"]) == (pytest.approx(kf), pytest.approx(kc)), key
        assert (r["percent_fine"], r["percent_coarse"]) == (pytest.approx(pf), pytest.approx(pc)), key
    # Trend, items in time order k1..k5 in windows of 2: fine (1+1/3)/2, (0+1)/2, 0; coarse 1, 1, 0.
    trend = [(t["n_items"], t["percent_fine"], t["percent_coarse"]) for t in agr["trend"]]
    assert trend == [(2, pytest.approx(2 / 3), 1.0), (2, 0.5, 1.0), (1, 0.0, 0.0)]
    assert "percent agreement" in res.stdout and "Fleiss" in res.stdout
