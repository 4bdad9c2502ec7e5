"""The page in a real browser: headless Chromium driven by Selenium against a live waitress server.

Screenshots of the results page (desktop 1280 and phone 390 wide) and of an article page are
saved in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from waitress import create_server
from web_corpus import build_web_index

from web import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROME_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
WAIT_SECONDS = 10


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    server = create_server(create_app(build_web_index(tmp_path_factory.mktemp("browser"))), host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium and chromium-driver to run the browser suite")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,900")
    options.add_argument("--lang=ja-JP")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for CSP reports
    service = Service(str(CHROMEDRIVER)) if CHROMEDRIVER.exists() else Service(shutil.which("chromedriver"))
    browser = webdriver.Chrome(options=options, service=service)
    yield browser
    browser.quit()


def wait(driver, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS).until(condition)


def screenshot(driver, name: str, width: int) -> Path:
    """A full-height screenshot of the current page as loaded `width` CSS pixels wide."""
    ARTIFACTS.mkdir(exist_ok=True)
    driver.set_window_size(width, 900)
    driver.refresh()  # the page adapts on load (the filters fold on a phone)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height, 600), 4000))
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    driver.refresh()
    return path


def search_for(driver, base_url: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(base_url + "/")
    box = driver.switch_to.active_element
    assert box.get_attribute("id") == "q", "the search box is focused on load"
    box.send_keys(text, Keys.ENTER)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".results-summary"))


def test_search_facet_page_article_and_back(driver, base_url):
    from selenium.webdriver.common.by import By

    search_for(driver, base_url, "半導体")
    assert "q=%E5%8D%8A%E5%B0%8E%E4%BD%93" in driver.current_url
    hits = driver.find_elements(By.CSS_SELECTOR, ".hit")
    assert len(hits) == 10
    assert driver.find_elements(By.CSS_SELECTOR, ".hit .snippet mark")
    assert "この記事の他の一致箇所" in driver.find_element(By.CSS_SELECTOR, ".hit .others summary").text
    assert screenshot(driver, "results-desktop.png", 1280).exists()
    assert screenshot(driver, "results-phone.png", 390).exists()

    driver.find_element(By.CSS_SELECTOR, 'nav[aria-label="カテゴリで絞り込む"] a').click()
    wait(driver, lambda d: "category=" in d.current_url)
    assert driver.find_elements(By.CSS_SELECTOR, ".chip")

    driver.get(base_url + "/?q=半導体")
    driver.find_element(By.CSS_SELECTOR, 'a[rel="next"]').click()
    wait(driver, lambda d: "page=2" in d.current_url)
    assert driver.find_element(By.CSS_SELECTOR, ".hits").get_attribute("start") == "11"

    link = driver.find_element(By.CSS_SELECTOR, ".hit-title a")
    href = link.get_attribute("href")
    anchor = href.rsplit("#", 1)[1]
    link.click()
    wait(driver, lambda d: "/articles/" in d.current_url)
    section = driver.find_element(By.ID, anchor)
    assert driver.execute_script("return document.querySelector(':target').id") == anchor
    in_view = "var r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight;"
    wait(driver, lambda d: d.execute_script(in_view, section))  # the matched section is scrolled into view
    assert driver.find_elements(By.CSS_SELECTOR, ".article mark")
    assert screenshot(driver, "article.png", 1280).exists()

    driver.back()
    wait(driver, lambda d: "page=2" in d.current_url and d.find_elements(By.CSS_SELECTOR, ".hit"))
    assert driver.find_element(By.ID, "q").get_attribute("value") == "半導体"


def test_keyboard_only(driver, base_url):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(base_url + "/?q=半導体")
    driver.find_element(By.TAG_NAME, "body").click()
    ActionChains(driver).send_keys("/").perform()
    assert driver.switch_to.active_element.get_attribute("id") == "q", "/ focuses the search box"

    ActionChains(driver).send_keys("工場").perform()  # "/" selected the old query: typing replaces it
    box = driver.switch_to.active_element
    assert box.get_attribute("value") == "工場"
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#suggestions [role=option]"))
    box.send_keys(Keys.ARROW_DOWN)
    assert driver.find_element(By.ID, "q").get_attribute("aria-activedescendant") == "suggestion-0"
    box.send_keys(Keys.ENTER)  # picks the highlighted suggestion, the query 工場
    wait(driver, lambda d: "q=%E5%B7%A5%E5%A0%B4" in d.current_url)

    # Tab from the search box reaches a result title link, and Enter opens it.
    for _ in range(40):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
        if "hit-title" in (focused.find_element(By.XPATH, "..").get_attribute("class") or ""):
            break
    else:
        pytest.fail("no result link reachable by Tab")
    outline = focused.value_of_css_property("outline-style")
    assert outline != "none", "focus is visible"
    focused.send_keys(Keys.ENTER)
    wait(driver, lambda d: "/articles/" in d.current_url)
    assert driver.switch_to.active_element.tag_name == "section", "focus lands on the matched section"


def test_hostile_article_runs_no_script(driver, base_url):
    from selenium.webdriver.common.by import By

    driver.get(base_url + "/articles/evil/hostile")
    assert "<script>alert(1)</script>" in driver.find_element(By.ID, "article-title").text
    assert not driver.find_elements(By.CSS_SELECTOR, ".article script, .article img, .article a[href^=javascript]")
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def csp_violations(driver) -> list[str]:
    """The console's Content-Security-Policy reports since the last call (reading clears them)."""
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_pages_break_no_content_security_policy(driver, base_url):
    from selenium.webdriver.common.by import By

    csp_violations(driver)  # what earlier tests left
    for path in ("/", "/?q=半導体&sort=newest", "/?q=半導体&page=2", "/articles/evil/hostile", "/no-such-page"):
        driver.get(base_url + path)
        wait(driver, lambda d: d.find_elements(By.ID, "q"))
    driver.find_element(By.ID, "q").send_keys("工場")  # suggestions come through fetch()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#suggestions [role=option]"))
    assert csp_violations(driver) == []

    # The policy is enforced, not just sent: injected inline script and style are refused.
    driver.execute_script("""
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.body.appendChild(script);
        document.body.insertAdjacentHTML("beforeend", '<p id="styled" style="color: rgb(255, 0, 0)">x</p>');
    """)
    assert driver.execute_script("return window.injected === undefined")
    assert driver.find_element(By.ID, "styled").value_of_css_property("color") != "rgba(255, 0, 0, 1)"
    reported = " ".join(csp_violations(driver))
    assert "script-src" in reported or "default-src" in reported
