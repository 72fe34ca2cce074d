"""``rramlab report FILE… --html/--csv/--figures``: the self-contained HTML page (also rendered in headless
Chromium), escaping of strings from run files, CSV export with units, multi-file reports, figure labels,
and the report plots (I–V legend, signed fit legend, readable CDFs, program-verify, retention, endurance
failures, read disturb)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rramlab.analysis.dataset import RunMetadata, RunWriter, open_run
from rramlab.analysis.export_csv import csv_header, read_csv_with_units
from rramlab.analysis.plots import (
    iterations_per_cell,
    plot_endurance,
    plot_iterations,
    plot_iv_loops,
    plot_program_verify_traces,
    plot_programmed_cdfs,
    plot_programming_noise,
    plot_read_disturb,
    plot_retention_cdfs,
    plot_retention_levels,
    report_figures,
)
from rramlab.analysis.report_html import RunInfo, die_label, figure_label, run_info

HOSTILE_RECIPE = '<script>alert("recipe")</script>'
HOSTILE_STATION = "<img src=x onerror=alert(1)> & bench"
HOSTILE_MESSAGE = "</td></tr></table><script>alert('step')</script>"
RECIPE = f'[recipe]\nname = {json.dumps(HOSTILE_RECIPE)}\n'
STATION = f'[station]\nname = {json.dumps(HOSTILE_STATION)}\n[array]\ntopology = "1T1R"\nrows = 4\ncols = 3\n'
TARGETS = (10e-6, 40e-6, 80e-6)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "RRAMLAB_LOCK_DIR": str(cwd / "locks")}
    return subprocess.run([sys.executable, "-m", "rramlab.protocols.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=240, env=env)


def write_synthetic_run(path: Path) -> None:
    """A 4×3-array run with hostile recipe/station/step texts and program-verify, retention, endurance and
    read-disturb tables (units declared)."""
    rng = np.random.default_rng(5)
    with RunWriter(path, metadata=RunMetadata(recipe=RECIPE, station=STATION, seed=1)) as w:
        cells = [(r, c) for r in range(4) for c in range(3)]
        with w.step("program_verify", "program_verify", {}, cells) as st:
            pv = st.table("program_verify", {"row": ("i4", ""), "col": ("i4", ""), "target": ("f8", "S"),
                                             "acceptance": ("f8", ""), "iteration": ("i4", ""),
                                             "v_pulse": ("f8", "V"), "g": ("f8", "S"), "t": ("f8", "s")})
            res = st.table("program_verify_result", {"row": ("i4", ""), "col": ("i4", ""), "target": ("f8", "S"),
                                                     "acceptance": ("f8", ""), "g_final": ("f8", "S"),
                                                     "iterations": ("i4", ""), "converged": (bool, "bool"),
                                                     "t_done": ("f8", "s")})
            t = 0.0
            for k, (row, col) in enumerate(cells):
                target = TARGETS[k % 3]
                n = 3 + k
                for it in range(n):
                    t += 0.01
                    pv.append({"row": row, "col": col, "target": target, "acceptance": 0.02, "iteration": it,
                               "v_pulse": 1.0, "g": target * (1 + 0.5 * (n - 1 - it) / n), "t": t})
                res.append({"row": row, "col": col, "target": target, "acceptance": 0.02,
                            "g_final": target * (1 + 0.01 * rng.standard_normal()), "iterations": n,
                            "converged": k != 11, "t_done": t})
        with w.step("retention", "retention", {}, cells) as st:
            rt = st.table("retention", {"row": ("i4", ""), "col": ("i4", ""), "target": ("f8", "S"),
                                        "g0": ("f8", "S"), "t_prog": ("f8", "s"), "tau": ("f8", "s"),
                                        "g": ("f8", "S"), "t": ("f8", "s")})
            for k, (row, col) in enumerate(cells):
                target = TARGETS[k % 3]
                for tau in (60.0, 3600.0, 86400.0):
                    rt.append({"row": row, "col": col, "target": target, "g0": target, "t_prog": 100.0 + k,
                               "tau": tau, "g": target - 1e-8 * np.log(tau), "t": 100.0 + k + tau})
        with w.step("endurance", "endurance", {}, cells[:2]) as st:
            en = st.table("endurance", {"row": ("i4", ""), "col": ("i4", ""), "cycle": ("i8", ""),
                                        "g_lrs": ("f8", "S"), "g_hrs": ("f8", "S"), "t": ("f8", "s")})
            er = st.table("endurance_result", {"row": ("i4", ""), "col": ("i4", ""), "cycles_done": ("i8", ""),
                                               "failed": (bool, "bool"), "failed_at": ("i8", "")})
            for col, stop in ((0, 100), (1, 10)):
                for cycle in (1, 10, 100)[: 3 if stop == 100 else 2]:
                    en.append({"row": 0, "col": col, "cycle": cycle, "g_lrs": 80e-6, "g_hrs": 10e-6, "t": cycle})
                er.append({"row": 0, "col": col, "cycles_done": stop, "failed": stop < 100, "failed_at": stop % 100})
        with w.step("read_disturb", "read_disturb", {}, cells[:2]) as st:
            rd = st.table("read_disturb", {"row": ("i4", ""), "col": ("i4", ""), "n_reads": ("i8", ""),
                                           "g": ("f8", "S"), "t": ("f8", "s"), "v_read": ("f8", "V"),
                                           "nplc": ("f8", ""), "note": (str, "")})
            for col in (0, 1):
                for n in (0, 1, 10, 100, 1000):
                    rd.append({"row": 0, "col": col, "n_reads": n, "g": 20e-6 + 1e-9 * n, "t": n * 0.02,
                               "v_read": 0.2, "nplc": 1.0, "note": 'a, "quoted"\nline'})
            st.finish("failed", HOSTILE_MESSAGE)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real demo run and the synthetic run, reported together by the CLI (--html, --csv, --figures)."""
    cwd = tmp_path_factory.mktemp("report")
    demo = cli("demo", "--seed", "3", "--out", "demo.h5", "--quiet", cwd=cwd)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    write_synthetic_run(cwd / "synthetic.h5")
    proc = cli("report", "demo.h5", "synthetic.h5", "--html", "report.html", "--csv", "csv", "--figures", "figs",
               cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"cwd": cwd, "stdout": proc.stdout, "html": (cwd / "report.html").read_text(encoding="utf-8")}


class _Page(HTMLParser):
    """Tags with their attributes, and figure captions, of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.captions: list[str] = []
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "figcaption":
            self._in_caption = True
            self.captions.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "figcaption":
            self._in_caption = False

    def handle_data(self, data: str) -> None:
        if self._in_caption:
            self.captions[-1] += data


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _reported_figures(stdout: str) -> int:
    match = re.search(r"report\.html: 2 run\(s\), (\d+) figures", " ".join(stdout.split()))
    assert match, stdout
    return int(match.group(1))


def _labels(cwd: Path) -> dict[str, str]:
    return {name: figure_label(run_info(open_run(cwd / name))) for name in ("demo.h5", "synthetic.h5")}


# -- the page, without a browser ----------------------------------------------------------------------

def test_html_is_self_contained(runs: dict[str, Any]) -> None:
    page = _parse(runs["html"])
    tags = {tag for tag, _ in page.tags}
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    urls = [v for _, attrs in page.tags for k, v in attrs.items() if k in ("src", "href", "srcset", "data") and v]
    assert urls and all(u.startswith(("data:image/png;base64,", "#")) for u in urls), urls[:3]
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", runs["html"], re.I)
    assert "url(" not in runs["html"] and "@import" not in runs["html"]
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")
    assert not list(runs["cwd"].glob(".*.partial"))                          # written via a temporary file


def test_strings_from_the_run_file_are_escaped(runs: dict[str, Any]) -> None:
    html_text = runs["html"]
    for hostile in (HOSTILE_RECIPE, HOSTILE_STATION, HOSTILE_MESSAGE):
        assert hostile not in html_text
    assert "&lt;script&gt;alert(&quot;recipe&quot;)&lt;/script&gt;" in html_text
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; bench" in html_text
    assert "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert(&#x27;step&#x27;)" in html_text
    assert not any(tag == "img" and "onerror" in attrs for tag, attrs in _parse(html_text).tags)


def test_every_figure_is_embedded_and_labelled_with_run_and_die(runs: dict[str, Any]) -> None:
    page = _parse(runs["html"])
    figures = [a for t, a in page.tags if t == "figure"]
    images = [a for t, a in page.tags if t == "img"]
    n = _reported_figures(runs["stdout"])
    body = next(a for t, a in page.tags if t == "body")
    assert len(figures) == len(images) == len(page.captions) == n == int(body["data-figures"] or 0)
    labels = _labels(runs["cwd"])
    per_run = {name: [c for c in page.captions if label in c] for name, label in labels.items()}
    assert len(per_run["demo.h5"]) == 12 and len(per_run["synthetic.h5"]) == 10, per_run
    assert "1T1R 8×8 array" in labels["demo.h5"] and "1T1R 4×3 array" in labels["synthetic.h5"]
    for fig, img, caption in zip(figures, images, page.captions, strict=True):
        assert fig["data-label"] in caption and fig["data-label"] in (img["alt"] or "")
        assert fig["data-label"] in labels.values()
        png = base64.b64decode((img["src"] or "").split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert {f["data-figure"] for f in figures if labels["synthetic.h5"] == f["data-label"]} == {
        "endurance", "program_verify_traces", "iterations", "programming_noise", "programmed_cdfs", "relaxation",
        "retention_levels", "retention_cdfs", "mvm_rmse", "read_disturb"}


def test_report_figures_carry_the_label_in_the_image() -> None:
    figs = report_figures({"read_disturb": read_disturb_frame()}, label="run abc (x.h5) · die W3")
    assert list(figs) == ["read_disturb"] and figs["read_disturb"].get_suptitle() == "run abc (x.h5) · die W3"


def test_die_label_takes_a_recorded_die_else_station_and_array() -> None:
    info = RunInfo(path="/data/w3.h5", run_id="0123456789abcdef", recipe="r", station="probe station 2",
                   array="1T1R 64×64", die="", start_time="", stop_time="", exit_status="completed",
                   exit_message="", steps=())
    assert die_label(info) == "probe station 2, 1T1R 64×64 array"
    assert figure_label(info) == "run 01234567 (w3.h5) · probe station 2, 1T1R 64×64 array"
    info = RunInfo(**{**info.__dict__, "die": "W3-D12"})
    assert figure_label(info) == "run 01234567 (w3.h5) · die W3-D12"


def test_html_page_shows_metadata_steps_and_summary_per_file(runs: dict[str, Any]) -> None:
    html_text = runs["html"]
    demo = open_run(runs["cwd"] / "demo.h5")
    assert demo.metadata["run_id"] in html_text and demo.metadata["start_time"] in html_text
    for step in demo.steps:
        assert f"<td>{step.name}</td><td>{step.protocol}</td><td>{step.status}</td>" in html_text
    assert "<td>read_disturb</td><td>read_disturb</td><td>failed</td>" in html_text
    summary = next(t for t in html_text.split("<h2>summary</h2>", 1)[1].split("<table>")[1:2])
    assert "<th>demo.h5</th><th>synthetic.h5</th>" in summary
    yield_row = re.search(r"<td>forming\.yield</td><td class=\"num\">([^<]*)</td><td class=\"num\">([^<]*)</td>",
                          summary)
    assert yield_row and yield_row.group(1) == "1" and yield_row.group(2) == "—"   # the synthetic run formed nothing


# -- multi-file JSON, PNGs and CSV -------------------------------------------------------------------

def test_several_files_print_one_summary_per_file(runs: dict[str, Any]) -> None:
    out, _ = json.JSONDecoder().raw_decode(runs["stdout"].lstrip())
    assert list(out) == ["demo.h5", "synthetic.h5"]
    assert out["demo.h5"]["exit_status"] == "completed" and out["demo.h5"]["forming"]["n_cells"] == 64
    assert "forming" not in out["synthetic.h5"] and out["synthetic.h5"]["program_verify"]["2%"]["n_cells"] == 12
    one = cli("report", "synthetic.h5", cwd=runs["cwd"])
    assert one.returncode == 0 and json.loads(one.stdout) == out["synthetic.h5"]    # one file: as before


def test_figures_of_several_files_go_to_one_directory_each(runs: dict[str, Any]) -> None:
    figs = runs["cwd"] / "figs"
    assert sorted(p.name for p in figs.iterdir()) == ["demo", "synthetic"]
    assert (figs / "synthetic" / "read_disturb.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((figs / "demo").glob("*.png"))) == 12 and not list(figs.rglob(".*"))


def test_csv_has_units_in_the_header_and_round_trips(runs: dict[str, Any]) -> None:
    csv_dir = runs["cwd"] / "csv"
    demo, synthetic = open_run(runs["cwd"] / "demo.h5"), open_run(runs["cwd"] / "synthetic.h5")
    expected = {f"demo.{t}.csv" for t in demo.tables} | {f"synthetic.{t}.csv" for t in synthetic.tables}
    assert {p.name for p in csv_dir.iterdir()} == expected                   # nothing partial left behind
    header = (csv_dir / "demo.retention.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["seq", "step", "row", "col"]
    assert {"target [S]", "g0 [S]", "tau [s]", "g [S]", "t [s]"} <= set(header)
    assert header == csv_header(demo.table("retention"))
    for run, name in ((demo, "retention"), (demo, "forming"), (synthetic, "read_disturb")):
        table = run.table(name)
        back = read_csv_with_units(csv_dir / f"{Path(run.path).stem}.{name}.csv")
        assert back.attrs["units"] == {c: u for c, u in table.attrs["units"].items() if u}
        pd.testing.assert_frame_equal(back, table.reset_index(drop=True), check_dtype=False, check_exact=True)
    assert read_csv_with_units(csv_dir / "synthetic.read_disturb.csv")["note"][0] == 'a, "quoted"\nline'


def test_csv_header_names_units_only_where_there_are_some() -> None:
    df = pd.DataFrame({"row": [1], "g": [1e-5], "t": [0.5]})
    df.attrs["units"] = {"row": "", "g": "S", "t": "s"}
    assert csv_header(df) == ["row", "g [S]", "t [s]"]


def test_report_refuses_unwritable_outputs_before_reading(runs: dict[str, Any]) -> None:
    proc = cli("report", "demo.h5", "--html", "nodir/r.html", cwd=runs["cwd"])
    assert proc.returncode == 2 and "directory nodir does not exist" in proc.stdout
    proc = cli("report", "demo.h5", "--csv", "demo.h5", cwd=runs["cwd"])
    assert proc.returncode == 2 and "--csv demo.h5 exists and is not a directory" in proc.stdout


# -- the plots ---------------------------------------------------------------------------------------

def iv_frame(cells: int, cycles: int) -> pd.DataFrame:
    v = np.concatenate([np.linspace(0, 1, 11), np.linspace(1, 0, 11), np.linspace(0, -1, 11), np.linspace(-1, 0, 11)])
    rows = [pd.DataFrame({"row": c // 4, "col": c % 4, "cycle": k, "v": v, "i": v * 1e-5 * (1 + c)})
            for c in range(cells) for k in range(cycles)]
    df = pd.concat(rows, ignore_index=True)
    return df.assign(seq=np.arange(len(df)))


def test_iv_plot_shows_the_first_loop_of_several_cells_with_a_legend() -> None:
    fig = plot_iv_loops(iv_frame(10, 8))
    ax = fig.axes[0]
    assert len(ax.lines) == 8 and len({line.get_color() for line in ax.lines}) == 8
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"({c // 4}, {c % 4})" for c in range(8)]
    assert ax.get_title() == "I–V: first loop of 8 of 10 cells (8 of 80 loops)"
    i = np.asarray(ax.lines[1].get_ydata(), float)
    assert np.nanmax(i) == pytest.approx(2e-5)                               # cell (0, 1), not cell (0, 0) again


def test_programming_noise_legend_has_a_true_minus_and_units() -> None:
    stats = {"2%": {"per_target": pd.DataFrame({"target": [10e-6, 80e-6], "sigma": [0.1e-6, 1e-6]}),
                    "slope": 0.0128, "intercept_uS": -0.015, "acceptance": 0.02}}
    texts = [t.get_text() for t in plot_programming_noise(stats).axes[0].get_legend().get_texts()]
    assert "fit σ = 0.0128·G − 0.015 µS" in texts and not any("+ -" in t for t in texts)
    stats["2%"]["intercept_uS"] = 0.015
    assert "fit σ = 0.0128·G + 0.015 µS" in [t.get_text() for t in
                                             plot_programming_noise(stats).axes[0].get_legend().get_texts()]


def test_programmed_cdfs_with_few_cells_have_markers_and_say_n() -> None:
    rng = np.random.default_rng(1)
    target = np.repeat([10e-6, 20e-6, 30e-6], 4)
    df = pd.DataFrame({"target": target, "acceptance": 0.002, "g_final": target * (1 + 1e-3 * rng.uniform(-1, 1, 12)),
                       "iterations": 5, "converged": True})
    ax = plot_programmed_cdfs(df).axes[0]
    assert len(ax.lines) == 3 and all(line.get_marker() == "o" for line in ax.lines)
    assert ax.get_title() == "AR 0.2%: 3 targets, n = 4 per target"


def test_program_verify_traces_and_iterations() -> None:
    pv = pd.concat([pd.DataFrame({"seq": np.arange(n) + 100 * k, "row": 0, "col": k, "target": 10e-6 * (k + 1),
                                  "acceptance": 0.02, "iteration": np.arange(n),
                                  "g": np.linspace(5e-6, 10e-6 * (k + 1), n)})
                    for k, n in enumerate((3, 7, 12))], ignore_index=True)
    ax = plot_program_verify_traces(pv, max_traces=2).axes[0]
    traces = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert [len(line.get_xdata()) for line in traces] == [3, 12]            # lowest and highest target
    assert ax.get_title() == "AR 2%: 2 of 3 traces"
    assert iterations_per_cell(pv)["iterations"].tolist() == [2, 6, 11]     # pulses after the initial read
    ax = plot_iterations(pv).axes[0]
    assert ax.get_xscale() == "log" and ax.get_legend().get_texts()[0].get_text() == "AR 2%: 3 converged"
    result = pd.DataFrame({"acceptance": 0.02, "iterations": [3, 7, 12, 1000], "converged": [True, True, True, False]})
    assert plot_iterations(result).axes[0].get_legend().get_texts()[0].get_text() == "AR 2%: 3 converged, 1 not"


def test_retention_per_level_and_cdfs_over_time() -> None:
    rows = [{"row": 0, "col": c, "target": t, "g0": t, "t_prog": float(c), "tau": tau, "g": t - 1e-7 * np.log10(tau),
             "t": c + tau} for c, t in enumerate((10e-6, 20e-6, 30e-6, 40e-6)) for tau in (60.0, 3600.0, 86400.0)]
    df = pd.DataFrame(rows)
    ax = plot_retention_levels(df, max_levels=3).axes[0]
    assert len(ax.lines) == 3 and ax.get_xscale() == "log" and ax.get_title() == "retention per level: 3 of 4 levels"
    assert np.asarray(ax.lines[-1].get_ydata(), float) == pytest.approx([40 - 0.1 * np.log10(t) for t in
                                                                         (60, 3600, 86400)])
    ax = plot_retention_cdfs(df).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["τ = 1min (n = 4)", "τ = 1h (n = 4)",
                                                                   "τ = 1d (n = 4)"]


def test_endurance_marks_failed_cells_without_extra_lines() -> None:
    en = pd.DataFrame({"row": 0, "col": [0, 0, 0, 1, 1], "cycle": [1, 10, 100, 1, 10],
                       "g_lrs": [80e-6, 80e-6, 80e-6, 70e-6, 30e-6], "g_hrs": [10e-6, 10e-6, 10e-6, 10e-6, 25e-6]})
    result = pd.DataFrame({"row": [0, 0], "col": [0, 1], "cycles_done": [100, 10], "failed": [False, True],
                           "failed_at": [0, 10]})
    ax = plot_endurance(en, result).axes[0]
    assert len(ax.lines) == 2 and ax.get_title() == "endurance, 2 cells, 1 failed"
    marks = ax.collections[-1].get_offsets()
    assert np.asarray(marks, float).tolist() == [[10.0, 30.0], [10.0, 25.0]]


def read_disturb_frame() -> pd.DataFrame:
    n = np.array([0, 1, 10, 100, 1000, 10000])
    return pd.concat([pd.DataFrame({"row": 1, "col": c, "n_reads": n, "g": (20 + c - 1e-3 * n) * 1e-6,
                                    "t": n * 0.02, "v_read": 0.2, "nplc": 1.0}) for c in range(3)], ignore_index=True)


def test_read_disturb_plots_g_vs_reads_per_cell_on_log_x() -> None:
    ax = plot_read_disturb(read_disturb_frame(), max_cells=2).axes[0]
    assert len(ax.lines) == 2 and ax.get_xscale() == "log"
    assert np.asarray(ax.lines[1].get_xdata()).tolist() == [1, 10, 100, 1000, 10000]       # n = 0 off the log axis
    assert np.asarray(ax.lines[1].get_ydata(), float) == pytest.approx([21 - 1e-3 * n for n in (1, 10, 100, 1e3, 1e4)])
    assert ax.get_title() == "read disturb: 2 of 3 cells, V_read 0.2 V, NPLC 1"


# -- the page in headless Chromium --------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def test_page_renders_in_headless_chromium_offline(runs: dict[str, Any]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    if CHROMIUM is None:
        pytest.skip("no chromium executable on PATH (Debian: apt-get install chromium)")
    path = runs["cwd"] / "report.html"
    url = path.as_uri()
    start = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            console, errors, requests = [], [], []
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
            page.goto(url, wait_until="load")
            page.wait_for_load_state("networkidle")
            n_img = page.locator("img").count()
            decoded = page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 300)")
            captions = page.locator("figure figcaption").all_inner_texts()
            scripts = page.locator("script").count()
            title = page.locator("h1").inner_text()
            recipe_cells = page.locator("td", has_text=HOSTILE_RECIPE).count()
            fetched = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        finally:
            browser.close()
    elapsed = time.monotonic() - start
    n = _reported_figures(runs["stdout"])
    assert not errors and not [m for m in console if m[0] in ("error", "warning")], (errors, console)
    assert requests == [url] and fetched == [], (requests, fetched)
    assert n_img == n == len(captions) and decoded and scripts == 0
    assert f"2 runs, {n} figures" in title
    labels = _labels(runs["cwd"])
    assert all(any(label in c for label in labels.values()) for c in captions)
    assert recipe_cells == 2                    # the hostile recipe name is shown as text (overview + its run)
    assert elapsed < 60
