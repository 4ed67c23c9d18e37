"""The what-if page in a real headless browser (Debian's chromium and chromedriver, driven by Selenium).

Moves a prior's slider and sees the median change, downloads the study TOML and the records, and checks that
``uqenergy run`` on the TOML gives the records the page showed: for a paper study, and for a measured study
after choosing its model, GPU and boundary. Set ``UQENERGY_SCREENSHOT=docs/serve.png`` to keep the screenshot
the measured test takes (docs/serve.md shows it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import tomllib
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from uqenergy.web.app import create_app

REDRAWN = (NoSuchElementException, StaleElementReferenceException)  # the page redraws as it updates

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"
    ),
]
#: Chromium without a screen, a sandbox, or any connection of its own to the network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1700",
)


@pytest.fixture(scope="module")
def url():
    """The app served by uvicorn on a free port of 127.0.0.1, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def browser(tmp_path, monkeypatch):

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for a browser or driver to download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _downloaded(folder: Path, name: str) -> Path:
    path = folder / name
    for _ in range(200):
        if path.is_file() and not list(folder.glob("*.crdownload")):
            return path
        time.sleep(0.05)
    raise AssertionError(f"{name} was not downloaded: {sorted(p.name for p in folder.iterdir())}")


def test_move_a_prior_see_the_median_change_and_rerun_the_download(url, browser, cli, tmp_path):
    wait = WebDriverWait(browser, 60, ignored_exceptions=REDRAWN)
    browser.get(url + "/")
    median = wait.until(lambda d: d.find_elements(By.ID, "median") and d.find_element(By.ID, "median"))
    before = float(median.get_attribute("data-wh"))
    labels = browser.execute_script(  # the published estimates' labels, each inside the figure's width
        "const svg = document.getElementById('distribution'), width = svg.viewBox.baseVal.width;"
        "return Array.from(svg.querySelectorAll('text[fill=\"#A04000\"]'),"
        " t => { const b = t.getBBox(); return [b.x, b.x + b.width, width]; })"
    )
    assert labels and all(0 <= left and right <= width for left, right, width in labels), labels

    slider = browser.find_element(By.CSS_SELECTOR, "input[type=range][data-prior=output_tokens][data-param=median]")
    number = browser.find_element(By.CSS_SELECTOR, "input[type=number][data-prior=output_tokens][data-param=median]")
    assert number.get_attribute("value") == "300"
    ActionChains(browser).click_and_hold(slider).move_by_offset(60, 0).release().perform()
    after = wait.until(lambda d: (v := float(d.find_element(By.ID, "median").get_attribute("data-wh"))) != before and v)
    tokens = float(number.get_attribute("value"))
    assert tokens > 300 and after > before  # more output tokens per query, more energy per query
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None

    browser.find_element(By.ID, "download-toml").click()
    toml = _downloaded(browser.downloads, "paper_traditional_whatif.toml")
    browser.find_element(By.ID, "download-json").click()
    shown = json.loads(_downloaded(browser.downloads, "summary.json").read_text())
    assert f"median = {tokens:g}" in toml.read_text() or f"median = {tokens}" in toml.read_text()

    code, _, err = cli("run", toml, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == shown
    blend = next(r for r in shown if r["series"] == "blend" and r["pathway"] == "baseline")
    assert blend["median"] == after  # the headline is the record the run reproduces

    # nothing the page loaded came from anywhere but this server
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(name.startswith(url) or name.startswith("blob:") for name in loaded), loaded


def _median(browser) -> float:
    """The shown median, read in one script call (the page may redraw the element between two WebDriver calls)."""
    return float(browser.execute_script("return document.getElementById('median').dataset.wh"))


def _cards(browser) -> list[str]:
    """The priors shown as controls, read in one script call."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#priors .prior'), card => card.dataset.prior)"
    )


def test_choose_a_measured_model_gpu_and_boundary_move_concurrency_and_rerun(url, browser, cli, tmp_path):
    wait = WebDriverWait(browser, 120, ignored_exceptions=REDRAWN)
    browser.get(url + "/")
    wait.until(lambda d: d.find_elements(By.ID, "median"))
    Select(browser.find_element(By.ID, "study")).select_by_value("measured_chat")
    wait.until(lambda d: d.find_element(By.ID, "headline").text.startswith("all-h100:"))
    Select(browser.find_element(By.ID, "measured-gpu")).select_by_value("H100")
    Select(browser.find_element(By.ID, "measured-model")).select_by_value("Llama 3.1 8B Instruct")
    series = "Llama 3.1 8B Instruct (1xH100)"
    wait.until(lambda d: d.find_element(By.ID, "headline").text.startswith(series + ":"))
    assert _cards(browser) == ["concurrency", "server_overhead", "provisioning_overhead", "pue"]
    facility = _median(browser)

    Select(browser.find_element(By.ID, "measured-boundary")).select_by_value("provisioned")
    provisioned = wait.until(lambda d: (v := _median(d)) != facility and v)
    assert provisioned < facility  # the facility rung multiplies by a PUE of at least 1
    assert _cards(browser) == ["concurrency", "server_overhead", "provisioning_overhead"]
    assert "boundary provisioned" in browser.find_element(By.ID, "hardware").text

    p95 = "[data-prior=concurrency][data-param=p95]:not([data-model])"
    slider = browser.find_element(By.CSS_SELECTOR, "input[type=range]" + p95)
    ActionChains(browser).click_and_hold(slider).move_by_offset(80, 0).release().perform()
    busier = wait.until(lambda d: (v := _median(d)) != provisioned and v)
    concurrency = float(browser.find_element(By.CSS_SELECTOR, "input[type=number]" + p95).get_attribute("value"))
    assert concurrency > 512 and busier < provisioned  # larger batches: less GPU energy per token
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None

    browser.find_element(By.ID, "download-toml").click()
    toml = _downloaded(browser.downloads, "measured_chat_whatif.toml")
    browser.find_element(By.ID, "download-json").click()
    shown = json.loads(_downloaded(browser.downloads, "summary.json").read_text())
    measured = tomllib.loads(toml.read_text())["measured"]
    assert (measured["models"], measured["gpus"], measured["boundary"]) == (
        ["Llama 3.1 8B Instruct"],
        ["H100"],
        "provisioned",
    )
    code, _, err = cli("run", toml, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == shown
    record = next(r for r in shown if r["series"] == series and r["pathway"] == "baseline")
    assert record["median"] == busier and (record["gpu"], record["boundary"]) == ("H100", "provisioned")

    shot = Path(os.environ.get("UQENERGY_SCREENSHOT", tmp_path / "serve.png"))
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(shot))


def test_a_per_model_value_has_its_own_control(url, browser):
    wait = WebDriverWait(browser, 60, ignored_exceptions=REDRAWN)
    browser.get(url + "/")
    wait.until(lambda d: d.find_elements(By.ID, "median"))
    Select(browser.find_element(By.ID, "study")).select_by_value("paper_test_time")
    r1 = "input[type=number][data-prior=node_power_kw][data-model=DeepSeek-R1]"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, r1))  # the study's series and controls are in place
    Select(browser.find_element(By.ID, "series")).select_by_value("DeepSeek-R1")
    wait.until(lambda d: d.find_element(By.ID, "headline").text.startswith("DeepSeek-R1:"))
    before = _median(browser)
    power = browser.find_element(By.CSS_SELECTOR, r1)
    assert power.get_attribute("value") == "12.8"
    power.clear()
    power.send_keys("25.6", Keys.TAB)
    after = wait.until(lambda d: (v := _median(d)) != before and v)
    assert after == pytest.approx(2 * before, rel=1e-12)  # energy is proportional to node power


def test_bad_input_on_the_page_shows_the_one_line_error(url, browser):
    wait = WebDriverWait(browser, 60, ignored_exceptions=REDRAWN)
    browser.get(url + "/")
    wait.until(lambda d: d.find_elements(By.ID, "median"))
    p5 = browser.find_element(By.CSS_SELECTOR, "input[type=number][data-prior=pue][data-param=p5]")
    p5.clear()
    p5.send_keys("2", Keys.TAB)
    error = wait.until(lambda d: (e := d.find_element(By.ID, "error")).is_displayed() and e.text)
    assert error == "request: priors.pue.p5: p5 = 2 is not below p95 = 1.6 (p5 < p95)"
