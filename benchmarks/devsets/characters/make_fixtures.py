"""Derived fixtures of the characters dev set, made by ffmpeg from the real clips in ../shared/data, with
labels that follow from the source labels (`labels.json` beside this file) by construction.

    python -m benchmarks.devsets.characters.make_fixtures [--data ../shared/data] [--cache DIR]

writes ``DIR/<name>.mp4`` for every fixture below and ``DIR/labels.json`` (the same format as
labels.json; every video there has ``derived_from`` and its ``recipe``). Every name starts with
``derived_``: these are not real footage but real footage cut, re-ordered, shrunk or re-coloured. Nothing
here is committed; a fixture whose recipe is unchanged is not made again.

A fixture is a list of *pieces*, each an interval [t0, t1) of one real clip (on its video-stream clock,
as labelled) with an optional colour filter, scaled by (sx, sy) and placed at (ox, oy) on a canvas, then
concatenated. The labels of a piece are the source shots inside [t0, t1), shifted to the piece's place in
the fixture, positions mapped through the scale and offset, face heights scaled by sy. Each source shot
in a piece becomes a fixture shot; consecutive fixture shots from the same source scene of the same
*group* form a fixture scene, which keeps the source scene's pair when both people are still in it and
it lasts >= 5 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.characters_metrics import point_at

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_CACHE = REPO / "runs" / "devsets" / "characters"
FPS = 24
MARGIN = 0.05  # s cut off both ends of a source shot: no frame of the neighbouring shot slips in
PAIR_SECONDS = 5.0

GREY = "hue=s=0"
DARK_GREEN = "eq=brightness=-0.22:saturation=0.5,hue=h=140"
SEPIA_BRIGHT = (
    "colorchannelmixer=.393:.769:.189:0:.349:.686:.168:0:.272:.534:.131,eq=brightness=0.12:contrast=1.2"
)


@dataclass
class Piece:
    source: str  # key in labels.json
    t0: float | None = None  # None: the start of shot `shot` (plus MARGIN)
    t1: float | None = None
    shot: int | None = None  # a whole source shot (minus MARGIN each end)
    look: str | None = None  # an ffmpeg filter chain
    group: int = 0


@dataclass
class Fixture:
    name: str
    what: str
    pieces: list[Piece]
    canvas: tuple[int, int] | None = None  # (W, H); None: the first source's size
    scale: float | None = None  # one factor for every piece; None: fit the canvas
    centre: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def fixtures() -> list[Fixture]:
    mm = "Megamind"
    return [
        Fixture(
            "derived_megamind_bw_small",
            "SMALL FACES: Megamind shrunk to a tenth and centred in a black 640x360 black-and-white frame, so the "
            "faces are about 16-30 px tall (the woman 16-19, the man 21-30)",
            [Piece(mm, 0.0, 11.26, look=GREY)],
            canvas=(640, 360),
            scale=0.1,
        ),
        Fixture(
            "derived_megamind_bw_fifth",
            "SMALL FACES: the same at a fifth (144x106 px): faces about 33-60 px, across the 40 px border",
            [Piece(mm, 0.0, 11.26, look=GREY)],
            canvas=(640, 360),
            scale=0.2,
        ),
        Fixture(
            "derived_hamilton_audience_small",
            "SMALL FACES: Hamilton's audience shots at 0.4 (256x144 px) in a black 640x360 frame: three faces "
            "of 32-38 px and a dim one of 22 px",
            [Piece("short_hamilton_clip", 7.04, 9.176)],
            canvas=(640, 360),
            scale=0.4,
        ),
        Fixture(
            "derived_goldeneye_small",
            "SMALL FACES: goldeneye at 0.15 (192x82 px) in a black 640x360 frame: the two people's faces 28-35 px, "
            "the caricature on the screen 16-27 px",
            [Piece("goldeneye-vfr-drop3", 0.0, 9.969)],
            canvas=(640, 360),
            scale=0.15,
        ),
        Fixture(
            "derived_megamind_abab",
            "SHOT/REVERSE-SHOT: Megamind's four shots re-ordered and repeated 3 2 1 4 1 2 (woman, man, woman, man, "
            "woman, man): one conversation, one scene, two people",
            [Piece(mm, shot=s) for s in (2, 1, 0, 3, 0, 1)],
        ),
        Fixture(
            "derived_concat_megamind_audrey",
            "TWO CLIPS: Megamind, then the Audrey excerpt, on a 1280x720 canvas: a scene boundary at the join",
            [Piece(mm, 0.0, 11.26, group=0), Piece("audrey_hardsub", 0.0, 9.218, group=1)],
            canvas=(1280, 720),
        ),
        Fixture(
            "derived_megamind_looks",
            "ANOTHER LOOK: Megamind with its third shot (the woman) darkened and shifted green and its fourth (the "
            "man) sepia and brighter: the same two identities expected",
            [
                Piece(mm, shot=0),
                Piece(mm, shot=1),
                Piece(mm, shot=2, look=DARK_GREEN),
                Piece(mm, shot=3, look=SEPIA_BRIGHT),
            ],
        ),
        Fixture(
            "derived_audrey_looks",
            "ANOTHER LOOK: the Audrey close-up cut in three, as it is, darkened and shifted green, and sepia and "
            "brighter: one woman in three shots, one identity expected",
            [
                Piece("audrey_hardsub", 1.97, 4.40),
                Piece("audrey_hardsub", 4.45, 7.00, look=DARK_GREEN),
                Piece("audrey_hardsub", 1.97, 4.40, look=SEPIA_BRIGHT),
            ],
        ),
        Fixture(
            "derived_hamilton_aba",
            "PERFORMER + AUDIENCE: Hamilton's performer, the audience, the performer again: one performer identity "
            "in two shots, three audience members",
            [
                Piece("short_hamilton_clip", shot=2),
                Piece("short_hamilton_clip", shot=3),
                Piece("short_hamilton_clip", 2.79, 5.0),
            ],
        ),
    ]


# ------------------------------------------------------------------------------------------- labels


@dataclass
class Placement:
    sx: float
    sy: float
    ox: int
    oy: int
    w: int  # scaled size of the piece
    h: int
    canvas: tuple[int, int]

    def x(self, x: float, src_w: int) -> float:
        return round((self.ox + x * self.w) / self.canvas[0], 4)

    def y(self, y: float, src_h: int) -> float:
        return round((self.oy + y * self.h) / self.canvas[1], 4)


def _even(v: float) -> int:
    return max(2, round(v / 2) * 2)


def placement(src: dict, canvas: tuple[int, int], scale: float | None, centre: bool) -> Placement:
    W, H = canvas
    sw, sh = src["width"], src["height"]
    s = scale if scale is not None else min(W / sw, H / sh)
    w, h = min(W, _even(sw * s)), min(H, _even(sh * s))
    ox, oy = ((W - w) // 2, (H - h) // 2) if centre else (0, 0)
    return Placement(w / sw, h / sh, ox, oy, w, h, canvas)


def piece_interval(p: Piece, src: dict) -> tuple[float, float]:
    if p.shot is not None:
        sh = src["shots"][p.shot]
        return sh["start"] + MARGIN, sh["end"] - MARGIN
    assert p.t0 is not None and p.t1 is not None
    return max(p.t0, src["shots"][0]["start"]), min(p.t1, src["shots"][-1]["end"])


def _scene_of(src: dict, shot: int) -> int | None:
    for i, sc in enumerate(src.get("scenes", [])):
        if shot in sc["shots"]:
            return i
    return None


def _map_person(p: dict, t0: float, t1: float, shift: float, pl: Placement, src: dict) -> dict:
    keys = [k for k in p["at"] if t0 <= k[0] < t1]
    ends = [[t, *point_at(p["at"], t)] for t in (t0, max(t0, t1 - 1e-3))]
    at = sorted(keys + [e for e in ends if all(abs(e[0] - k[0]) > 1e-6 for k in keys)])
    out = {k: v for k, v in p.items() if k not in ("at", "face_px")}
    out["face_px"] = None if p.get("face_px") is None else round(p["face_px"] * pl.sy, 1)
    out["at"] = [[round(t + shift, 3), pl.x(x, src["width"]), pl.y(y, src["height"])] for t, x, y in at]
    return out


def fixture_labels(fx: Fixture, sources: dict[str, dict]) -> dict:
    """The labels of a fixture, from its sources' labels (see the module doc)."""
    first = sources[fx.pieces[0].source]
    canvas = fx.canvas or (first["width"], first["height"])
    shots: list[dict] = []
    origin: list[tuple[str, int | None, int]] = []  # per fixture shot: source, source scene, group
    pieces_out = []
    now = 0.0
    for p in fx.pieces:
        src = sources[p.source]
        pl = placement(src, canvas, fx.scale, fx.centre)
        t0, t1 = piece_interval(p, src)
        shift = now - t0
        for i, sh in enumerate(src["shots"]):
            a, b = max(t0, sh["start"]), min(t1, sh["end"])
            if b - a <= 1e-6:
                continue
            shots.append(
                {
                    "start": round(a + shift, 3),
                    "end": round(b + shift, 3),
                    "people": [_map_person(q, a, b, shift, pl, src) for q in sh.get("people", [])],
                    "non_person": [_map_person(q, a, b, shift, pl, src) for q in sh.get("non_person", [])],
                    "ignore": [
                        {
                            **r,
                            "box": [
                                pl.x(r["box"][0], 0),
                                pl.y(r["box"][1], 0),
                                pl.x(r["box"][2], 0),
                                pl.y(r["box"][3], 0),
                            ],
                        }
                        for r in sh.get("ignore", [])
                    ],
                    "from": {"video": p.source, "shot": i, "look": p.look},
                }
            )
            origin.append((p.source, _scene_of(src, i), p.group))
        pieces_out.append({**asdict(p), "t0": t0, "t1": t1, "at": round(now, 3), "placement": asdict(pl)})
        now += t1 - t0
    scenes: list[dict] = []
    for i, o in enumerate(origin):
        if scenes and origin[scenes[-1]["shots"][-1]] == o:
            scenes[-1]["shots"].append(i)
        else:
            scenes.append({"shots": [i]})
    for sc in scenes:
        source, k, _ = origin[sc["shots"][0]]
        src_pair = sources[source]["scenes"][k]["pair"] if k is not None else None
        span = shots[sc["shots"][-1]]["end"] - shots[sc["shots"][0]]["start"]
        present = {q["id"] for i in sc["shots"] for q in shots[i]["people"]}
        if src_pair == "unscored":
            sc["pair"] = "unscored"
        elif isinstance(src_pair, list) and set(src_pair) <= present and span >= PAIR_SECONDS:
            sc["pair"] = list(src_pair)
        else:
            sc["pair"] = None
    return {
        "key": fx.name,
        "path": f"{fx.name}.mp4",
        "width": canvas[0],
        "height": canvas[1],
        "duration": round(now, 3),
        "stream_start": 0.0,
        "derived_from": sorted({p.source for p in fx.pieces}),
        "what": fx.what,
        "recipe": {"pieces": pieces_out, "fps": FPS, "margin": MARGIN},
        "scenes_labelled": all(sources[p.source].get("scenes_labelled", True) for p in fx.pieces),
        "shots": shots,
        "scenes": scenes,
    }


# -------------------------------------------------------------------------------------------- video


def stream_start(path: Path) -> float:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=start_time",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        return float(out)
    except ValueError:
        return 0.0


def render(labels: dict, data: Path, sources: dict[str, dict], out: Path) -> None:
    """Cut, colour, scale, place and concatenate the pieces into one H.264 file (no audio)."""
    W, H = labels["width"], labels["height"]
    inputs: list[str] = []
    chains: list[str] = []
    starts: dict[str, float] = {}
    for p in labels["recipe"]["pieces"]:
        # one input per piece: an input shared by several trims of a filter graph gave longer videos
        inputs += ["-i", str(data / sources[p["source"]]["path"])]
        if p["source"] not in starts:
            starts[p["source"]] = stream_start(data / sources[p["source"]]["path"])
    for n, p in enumerate(labels["recipe"]["pieces"]):
        pl = p["placement"]
        o = starts[p["source"]]
        f = [f"trim=start={p['t0'] + o:.4f}:end={p['t1'] + o:.4f}", "setpts=PTS-STARTPTS"]
        if p["look"]:
            f.append(p["look"])
        f += [
            f"scale={pl['w']}:{pl['h']}",
            f"pad={W}:{H}:{pl['ox']}:{pl['oy']}:black",
            "setsar=1",
            f"fps={FPS}",
            "format=yuv420p",
        ]
        chains.append(f"[{n}:v:0]{','.join(f)}[p{n}]")
    k = len(labels["recipe"]["pieces"])
    graph = ";".join(chains) + ";" + "".join(f"[p{n}]" for n in range(k)) + f"concat=n={k}:v=1:a=0[v]"
    tmp = out.with_suffix(".tmp.mp4")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[v]"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-threads", "2", str(tmp)]
    subprocess.run(cmd, check=True)
    tmp.replace(out)


def make(data: Path = DEFAULT_DATA, cache: Path = DEFAULT_CACHE, names: list[str] | None = None) -> Path:
    """Every fixture (or those named) under `cache`; returns the path of their labels file."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed")
    source_labels = json.loads((HERE / "labels.json").read_text())
    sources = {v["key"]: v for v in source_labels["videos"]}
    cache.mkdir(parents=True, exist_ok=True)
    videos = []
    for fx in fixtures():
        if names and fx.name not in names:
            continue
        lab = fixture_labels(fx, sources)
        digest = hashlib.sha1(
            json.dumps([lab, source_labels["version"]], sort_keys=True).encode()
        ).hexdigest()[:12]
        lab["recipe"]["digest"] = digest
        mp4 = cache / f"{fx.name}.mp4"
        stamp = cache / f"{fx.name}.digest"
        if not (mp4.exists() and stamp.exists() and stamp.read_text() == digest):
            render(lab, data, sources, mp4)
            stamp.write_text(digest)
        videos.append(lab)
    labels_path = cache / "labels.json"
    labels_path.write_text(
        json.dumps(
            {
                "version": 1,
                "about": "DERIVED fixtures (not real footage as such) made by make_fixtures.py from the real clips; "
                "labels computed from labels.json by the construction",
                "conventions": source_labels["conventions"],
                "videos": videos,
            },
            indent=1,
        )
    )
    return labels_path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="../shared/data")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the fixtures go (not committed)")
    ap.add_argument("--only", nargs="*", help="fixture names (default: all)")
    args = ap.parse_args(argv)
    path = make(args.data, args.cache, args.only)
    print(path)


if __name__ == "__main__":
    main()
