"""`scan --output html` opened in headless Chromium (Debian's chromium + chromium-driver, `make browser`): the
rendered DOM shows the counts per account and Region and one row per revision, a click on a column header
sorts the rows (and a second click reverses them), nothing is fetched, hostile text stays text. The
screenshot stays under build/reports/ for the reader. Nothing is skipped: a browser that cannot start fails."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from demo.sandbox import Sandbox
from ecs_remediate.cli.main import main
from ecs_remediate.reports import html
from ecs_remediate.sweep import run as sweep

pytestmark = pytest.mark.external  # headless Chromium and chromedriver

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "reports"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
# What headless Chromium needs on this machine (as root, no network): see the machine notes.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"headless Chromium is not installed ({', '.join(missing)} missing): run `make browser`")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
    for flag in (*FLAGS, f"--user-data-dir={profile.name}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    except WebDriverException as error:
        profile.cleanup()
        pytest.fail(f"headless Chromium did not start ({CHROMIUM}, {CHROMEDRIVER}): {error.msg}")
    try:
        yield driver
    finally:
        driver.quit()
        profile.cleanup()


@pytest.fixture
def box(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name in ("MODE", "TOPIC_ARN", "IDEMPOTENCY_TABLE", "EXEMPT_FAMILIES", "SWEEP_RATES", "ROLLOUT", "RETIRE"):
        monkeypatch.delenv(name, raising=False)
    return Sandbox(endpoint_url=moto_endpoint)


def seed(box: Sandbox) -> None:
    """zeta:1, zeta:2 and alpha:1 privileged, mid:1 and mid:2 compliant."""
    for family, privileged in (("zeta", True), ("mid", False), ("alpha", True), ("zeta", True), ("mid", False)):
        container = {"name": "app", "image": "nginx", "memory": 64, "privileged": privileged}
        box.register({"family": family, "containerDefinitions": [container]})


def texts(elements: list[Any]) -> list[str]:
    return [element.text.strip() for element in elements]


def names(driver: Any) -> list[str]:
    return texts(driver.find_elements(By.CSS_SELECTOR, "#findings tbody tr td:nth-child(4)"))


def header(driver: Any, title: str) -> Any:
    return next(th for th in driver.find_elements(By.CSS_SELECTOR, "#findings thead th") if th.text.strip() == title)


def test_html_report_in_headless_chromium(box: Sandbox, browser: Any) -> None:
    seed(box)
    stdout, stderr = io.StringIO(), io.StringIO()
    assert main(["scan", "--scope", "active", "--output", "html", *FAST], stdout, stderr) == 1, stderr.getvalue()
    BUILD.mkdir(parents=True, exist_ok=True)
    page = BUILD / "scan.html"
    page.write_text(stdout.getvalue(), encoding="utf-8")
    browser.get(page.as_uri())

    counts = browser.find_element(By.CSS_SELECTOR, "#counts tbody tr")
    assert counts.get_attribute("data-account") == "123456789012" and counts.get_attribute("data-region") == "us-east-1"
    # Revisions, PASS, FAIL, EXEMPT, ERROR, Remediated, Retired, Left to fix
    assert texts(counts.find_elements(By.CSS_SELECTOR, "td"))[2:] == ["5", "2", "3", "0", "0", "0", "0", "3"]
    assert (
        "5 revision(s), active scope, us-east-1: 2 PASS, 3 FAIL, 0 EXEMPT, 0 ERROR"
        in browser.find_element(By.ID, "summary").text
    )

    rows = browser.find_elements(By.CSS_SELECTOR, "#findings tbody tr")
    assert len(rows) == 5
    by_name = {r.find_elements(By.TAG_NAME, "td")[3].text.strip(): r for r in rows}
    assert sorted(by_name) == ["alpha:1", "mid:1", "mid:2", "zeta:1", "zeta:2"]
    zeta = texts(by_name["zeta:2"].find_elements(By.TAG_NAME, "td"))
    assert zeta[0] == "FAIL" and zeta[4] == "app" and zeta[5] == "-" and zeta[6] == "reported"
    assert "aws ecs describe-task-definition --task-definition zeta:2 --include TAGS --region us-east-1" in zeta[7]
    assert texts(by_name["mid:1"].find_elements(By.TAG_NAME, "td"))[0] == "PASS"
    assert names(browser)[:3] == ["alpha:1", "zeta:1", "zeta:2"]  # open findings first

    header(browser, "Task definition").click()
    assert names(browser) == ["alpha:1", "mid:1", "mid:2", "zeta:1", "zeta:2"]
    assert header(browser, "Task definition").get_attribute("aria-sort") == "ascending"
    header(browser, "Task definition").click()
    assert names(browser) == ["zeta:2", "zeta:1", "mid:2", "mid:1", "alpha:1"]
    assert header(browser, "Task definition").get_attribute("aria-sort") == "descending"
    header(browser, "Status").click()
    statuses = texts(browser.find_elements(By.CSS_SELECTOR, "#findings tbody tr td:nth-child(1)"))
    assert statuses == ["FAIL", "FAIL", "FAIL", "PASS", "PASS"]
    assert header(browser, "Task definition").get_attribute("aria-sort") is None

    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    browser.set_window_size(1400, max(900, int(browser.execute_script("return document.body.scrollHeight")) + 200))
    assert browser.save_screenshot(str(BUILD / "scan.png"))


def test_hostile_text_stays_text_in_the_browser(browser: Any, tmp_path: Path) -> None:
    hostile = "<img src=x onerror=\"document.title='owned'\"><script>document.title='owned'</script>"
    finding = sweep.Finding(
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
        "ERROR",
        error=hostile,
        region="us-east-1",
        family="web",
        revision=3,
        host_equivalents=[f"app: host path /{hostile}"],
    )
    report = sweep.SweepReport("latest", ["us-east-1"], [finding], sweep.CallStats(), 0.1)
    page = tmp_path / "hostile.html"
    page.write_text(html.render(report, now=datetime.now(UTC)), encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.title != "owned"
    assert browser.execute_script("return document.scripts.length") == 1
    assert browser.execute_script("return document.images.length") == 0
    assert hostile in browser.find_element(By.CSS_SELECTOR, "#findings tbody tr td:nth-child(7)").text
    assert hostile in browser.find_element(By.CSS_SELECTOR, "#findings tbody tr td:nth-child(6)").text


def test_the_host_access_of_a_compliant_revision_in_the_browser(box: Sandbox, browser: Any) -> None:
    """Issue 21: a revision with no privileged container that keeps SYS_ADMIN, the host's / and pidMode host is not
    a bare PASS: its Host access cell names each, by level, and the summary counts it."""
    container = {
        "name": "app",
        "image": "vendor/agent:1",
        "memory": 64,
        "linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}},
        "mountPoints": [{"sourceVolume": "root", "containerPath": "/host", "readOnly": True}],
    }
    volumes = [{"name": "root", "host": {"sourcePath": "/"}}]
    box.register({"family": "agent", "pidMode": "host", "volumes": volumes, "containerDefinitions": [container]})
    box.register({"family": "plain", "containerDefinitions": [{"name": "a", "image": "x", "memory": 8}]})
    stdout, stderr = io.StringIO(), io.StringIO()
    assert main(["scan", "--scope", "active", "--output", "html", *FAST], stdout, stderr) == 0, stderr.getvalue()
    BUILD.mkdir(parents=True, exist_ok=True)
    page = BUILD / "scan-host-access.html"
    page.write_text(stdout.getvalue(), encoding="utf-8")
    browser.get(page.as_uri())

    assert "1 still host-equivalent" in browser.find_element(By.ID, "summary").text
    column = [th.text.strip() for th in browser.find_elements(By.CSS_SELECTOR, "#findings thead th")].index(
        "Host access"
    )
    rows = {
        r.find_elements(By.TAG_NAME, "td")[3].text.strip(): r
        for r in browser.find_elements(By.CSS_SELECTOR, "#findings tbody tr")
    }
    agent = rows["agent:1"].find_elements(By.TAG_NAME, "td")
    assert agent[0].text.strip() == "PASS"
    cell = agent[column]
    levels = {
        div.get_attribute("data-level"): texts(div.find_elements(By.TAG_NAME, "li"))
        for div in cell.find_elements(By.CSS_SELECTOR, "div[data-level]")
    }
    assert levels == {
        "host-equivalent": ["app: capability SYS_ADMIN", "app: host path / (read-only)"],
        "host-access": ["task: pidMode host"],
    }
    assert cell.text.startswith("still host-equivalent")  # what a reader sees first
    assert rows["plain:1"].find_elements(By.TAG_NAME, "td")[column].text.strip() == "-"
    header(browser, "Host access").click()  # sorts host-equivalent rows first
    assert names(browser)[0] == "agent:1"
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.save_screenshot(str(BUILD / "scan-host-access.png"))
