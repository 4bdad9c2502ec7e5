"""The page in a real browser: headless Chromium driven by Selenium against a live waitress server.

Screenshots of the results page (desktop 1280 and phone 390 wide) and of an article page are
saved in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import re
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
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
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


# --- phone widths, focus, IME, pagination and the article page (issue 29) --------------------

PHONE = (390, 844)
DESKTOP = (1280, 900)


def at_size(driver, size: tuple[int, int], dark: bool = False) -> None:
    """A viewport of `size` CSS pixels (DevTools' device metrics: exact, unlike a window size),
    in the light or dark colour scheme; the desktop size is the plain window again."""
    if size == DESKTOP:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.set_window_size(*DESKTOP)
    else:
        metrics = {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": True}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    scheme = [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": scheme})


def viewport_shot(driver, name: str) -> Path:
    """What a reader sees now (not the whole page): the landing position is the point."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


@pytest.fixture
def sized(driver):
    """Puts the window back to the desktop size, light scheme, after a test that changes them."""
    yield driver
    at_size(driver, DESKTOP)


def rect(driver, css: str) -> dict:
    return driver.execute_script("return document.querySelector(arguments[0]).getBoundingClientRect().toJSON()", css)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_phone_landing_on_a_section_shows_its_heading_and_the_article(sized, base_url, dark):
    from selenium.webdriver.common.by import By
    from web_corpus import DIGEST_TITLE

    at_size(sized, PHONE, dark)
    sized.get(base_url + "/?q=香川真司 移籍")
    assert sized.execute_script("return window.innerWidth") == PHONE[0]
    link = next(
        a for a in sized.find_elements(By.CSS_SELECTOR, ".hit-title a") if "digest/week" in a.get_attribute("href")
    )
    anchor = link.get_attribute("href").rsplit("#", 1)[1]
    assert anchor != "s1", "the result leads into the article, past its headline"
    link.click()
    wait(sized, lambda d: "/articles/digest/week" in d.current_url)
    wait(sized, lambda d: d.execute_script("return window.scrollY") > 0)
    heading = rect(sized, f"#{anchor} h2")
    bar = rect(sized, "#article-bar")
    assert bar["top"] == 0 and bar["height"] > 0, "the article bar is stuck to the top of the screen"
    assert heading["top"] >= bar["bottom"], "the section's heading is below the bar, not under it"
    assert heading["bottom"] < PHONE[1] / 2, "and near the top of the screen"
    title = sized.find_element(By.CSS_SELECTOR, "#article-bar .bar-headline")
    assert title.is_displayed() and title.text and DIGEST_TITLE.startswith(title.text.rstrip("…"))
    assert sized.find_element(By.CSS_SELECTOR, "#article-bar .bar-date").text == "2012年6月9日"
    target = sized.find_element(By.ID, anchor)
    assert target.value_of_css_property("outline-style") == "none", "no heavy ring around the landed section"
    assert target.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)", "a subtle tint instead"
    assert viewport_shot(sized, f"article-landing-phone-{'dark' if dark else 'light'}.png").exists()

    sized.execute_script("window.scrollTo(0, 0)")  # at the top the headline itself shows: the bar's copy hides
    wait(sized, lambda d: not d.find_element(By.CSS_SELECTOR, "#article-bar .bar-title").is_displayed())
    assert sized.find_element(By.ID, "article-title").is_displayed()


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_desktop_landing_clears_the_sticky_header(sized, base_url, dark):
    from selenium.webdriver.common.by import By

    at_size(sized, DESKTOP, dark)
    sized.get(base_url + "/articles/digest/week?q=香川#s4")
    wait(sized, lambda d: d.execute_script("return window.scrollY") > 0)
    header = rect(sized, ".site-header")
    bar = rect(sized, "#article-bar")
    assert header["top"] == 0 and bar["top"] >= header["bottom"] - 1
    assert rect(sized, "#s4 h2")["top"] >= bar["bottom"]
    assert sized.find_element(By.CSS_SELECTOR, "#article-bar .bar-headline").is_displayed()
    assert viewport_shot(sized, f"article-landing-desktop-{'dark' if dark else 'light'}.png").exists()


def test_results_pages_do_not_take_focus(driver, base_url):
    driver.get(base_url + "/?q=半導体")
    assert driver.execute_script("return document.activeElement.id") != "q", "no keyboard pops up on a phone"
    assert driver.execute_script("return document.activeElement === document.body")
    assert viewport_shot(driver, "results-no-focus.png").exists()  # no focus ring on the box
    driver.get(base_url + "/?q=半導体&page=999")
    assert driver.execute_script("return document.activeElement.id") != "q"
    driver.get(base_url + "/")
    assert driver.execute_script("return document.activeElement.id") == "q", "the empty home page is for typing"


def test_enter_while_composing_never_picks_a_suggestion(driver, base_url):
    """An IME's Enter confirms the conversion (かがわ → 香川): it must not choose a suggestion."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(base_url + "/?q=半導体")
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys("工場")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#suggestions [role=option]"))
    box.send_keys(Keys.ARROW_DOWN)
    assert box.get_attribute("aria-activedescendant") == "suggestion-0"
    before = driver.current_url
    driver.execute_script(
        """
        const box = arguments[0];
        box.dispatchEvent(new CompositionEvent("compositionstart", {bubbles: true, data: ""}));
        const composing = new KeyboardEvent(
            "keydown", {key: "Enter", code: "Enter", bubbles: true, cancelable: true, isComposing: true});
        box.dispatchEvent(composing);
        const legacy = new KeyboardEvent("keydown", {key: "Enter", code: "Enter", bubbles: true, cancelable: true});
        Object.defineProperty(legacy, "keyCode", {get: () => 229});  // what some browsers send instead
        box.dispatchEvent(legacy);
        box.dispatchEvent(new CompositionEvent("compositionend", {bubbles: true, data: "工場"}));
        window.composedEnterPrevented = composing.defaultPrevented || legacy.defaultPrevented;
    """,
        box,
    )
    assert driver.execute_script("return window.composedEnterPrevented") is False
    assert driver.current_url == before and driver.execute_script("return window.composedEnterPrevented") is False
    assert box.get_attribute("aria-activedescendant") == "suggestion-0", "the list is still open, nothing chosen"
    assert viewport_shot(driver, "suggest-after-composed-enter.png").exists()  # the list still open
    # The same Enter after the conversion is the user's: it picks the suggestion.
    driver.execute_script(
        """
        arguments[0].dispatchEvent(
            new KeyboardEvent("keydown", {key: "Enter", code: "Enter", bubbles: true, cancelable: true}));
    """,
        box,
    )
    wait(driver, lambda d: "q=%E5%B7%A5%E5%A0%B4" in d.current_url)


def test_pagination_counts_pages_and_reaches_the_last(sized, base_url):
    from selenium.webdriver.common.by import By

    driver = sized
    driver.get(base_url + "/?q=半導体&per_page=1&page=3")
    pager = driver.find_element(By.CSS_SELECTOR, ".pagination")
    pages = int(driver.find_element(By.CSS_SELECTOR, ".results-summary strong").text)
    assert f"{pages} ページ中 3 ページ目" in pager.text
    labels = [item.text for item in pager.find_elements(By.CSS_SELECTOR, "li")]
    assert labels == ["← 前へ", "1", "2", "3", "4", "5", "…", str(pages), "次へ →"]
    assert viewport_shot(driver, "pagination-desktop.png").exists()
    at_size(driver, PHONE)
    driver.refresh()  # the page adapts on load (the filters fold on a phone)
    driver.execute_script("document.querySelector('.pagination').scrollIntoView()")
    assert rect(driver, ".pagination ul")["right"] <= PHONE[0], "the pager fits a phone"
    assert viewport_shot(driver, "pagination-phone.png").exists()
    at_size(driver, DESKTOP)

    driver.find_element(By.CSS_SELECTOR, f'.pagination a[aria-label^="{pages} ページ目"]').click()
    wait(driver, lambda d: f"page={pages}" in d.current_url)
    assert not driver.find_elements(By.CSS_SELECTOR, 'a[rel="next"]')
    assert f"{pages} ページ中 {pages} ページ目" in driver.find_element(By.CSS_SELECTOR, ".pagination").text

    driver.get(base_url + "/?q=半導体&per_page=1&page=999")
    notice = driver.find_element(By.CSS_SELECTOR, ".past-end")
    assert "999 ページ目はありません" in notice.text and "語を減らす" not in driver.page_source
    assert viewport_shot(driver, "past-the-end-desktop.png").exists()
    notice.find_element(By.LINK_TEXT, f"最後のページ（{pages} ページ目）へ").click()
    wait(driver, lambda d: f"page={pages}" in d.current_url and d.find_elements(By.CSS_SELECTOR, ".hit"))


@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_table_of_contents_and_match_navigation(sized, base_url, width):
    from selenium.webdriver.common.by import By

    driver = sized
    at_size(driver, width)
    driver.get(base_url + "/articles/digest/week?q=香川")
    toc = driver.find_element(By.CSS_SELECTOR, "nav.toc")
    if not toc.find_element(By.TAG_NAME, "details").get_attribute("open"):
        toc.find_element(By.TAG_NAME, "summary").click()  # folded on a phone
    entries = toc.find_elements(By.CSS_SELECTOR, "li a")
    assert len(entries) >= 6 and all(entry.text for entry in entries)
    assert not any(entry.text.startswith("第") and entry.text.endswith("節") for entry in entries)
    assert viewport_shot(driver, f"toc-{'phone' if width == PHONE else 'desktop'}.png").exists()
    matched = toc.find_elements(By.CSS_SELECTOR, "li.matched a")
    assert len(matched) == 2
    matched[0].click()
    first = matched[0].get_attribute("href").rsplit("#", 1)[1]
    wait(driver, lambda d: d.execute_script("return location.hash") == "#" + first)
    driver.find_element(By.CSS_SELECTOR, f"#{first} a[data-match-nav=next]").click()
    wait(driver, lambda d: d.execute_script("return location.hash") != "#" + first)
    second = driver.execute_script("return location.hash.slice(1)")
    assert driver.find_element(By.ID, second).get_attribute("class").split() == ["article-section", "matched"]
    wait(driver, lambda d: rect(d, f"#{second} h2")["top"] >= rect(d, "#article-bar")["bottom"])
    assert driver.find_elements(By.CSS_SELECTOR, f"#{second} a[data-match-nav=prev]")


@pytest.mark.parametrize(
    "size, dark", [(DESKTOP, False), (PHONE, False), (PHONE, True)], ids=["desktop", "phone", "phone-dark"]
)
def test_other_sections_show_a_heading_once_and_text(sized, base_url, size, dark):
    from selenium.webdriver.common.by import By

    driver = sized
    at_size(driver, size, dark)
    driver.get(base_url + "/?q=香川")
    others = next(
        d
        for d in driver.find_elements(By.CSS_SELECTOR, ".hit .others")
        if "digest/week" in d.find_element(By.XPATH, "..").get_attribute("innerHTML")
    )
    others.find_element(By.TAG_NAME, "summary").click()
    lines = others.find_elements(By.CSS_SELECTOR, "li a")
    snippets = [line.find_elements(By.CSS_SELECTOR, ".other-snippet") for line in lines]
    headings = [h.text for line in lines for h in line.find_elements(By.CSS_SELECTOR, ".other-heading")]
    assert lines and all(snippet and snippet[0].text for snippet in snippets[:3]), "each line says what it is about"
    assert not any(re.fullmatch(r"第\d+節", line.text) for line in lines)
    best = others.find_element(By.XPATH, "../p[@class='section-heading']").text
    assert len(headings) == len(set(headings)) and best not in headings, "a heading is shown once"
    assert others.find_elements(By.CSS_SELECTOR, ".other-snippet mark"), "the other matches are marked"
    driver.execute_script("arguments[0].scrollIntoView()", others)
    name = "others-" + ("phone" if size == PHONE else "desktop") + ("-dark" if dark else "")
    assert viewport_shot(driver, name + ".png").exists()


# --- the timeline, the feed and the CSV download (issue 29) ------------------------------------


@pytest.mark.parametrize(
    "size, dark",
    [(DESKTOP, False), (DESKTOP, True), (PHONE, False), (PHONE, True)],
    ids=["desktop", "desktop-dark", "phone", "phone-dark"],
)
def test_a_timeline_bar_filters_to_its_month(sized, base_url, size, dark):
    from selenium.webdriver.common.by import By

    driver = sized
    at_size(driver, size, dark)
    driver.get(base_url + "/?q=半導体&sort=newest")
    bars = driver.find_elements(By.CSS_SELECTOR, ".timeline a.timeline-month")
    assert len(bars) == 7, "a link for each month with articles"
    chart = rect(driver, ".timeline-bars")
    assert chart["left"] >= 0 and chart["right"] <= size[0], "the chart fits the screen"
    heights = {
        bar.get_attribute("aria-label"): bar.find_element(By.CSS_SELECTOR, ".bar").size["height"] for bar in bars
    }
    assert heights["2011年3月: 3 件"] > heights["2011年1月: 2 件"] > heights["2012年3月: 1 件"] > 0
    bar = rect(driver, '.timeline a[aria-label="2011年3月: 3 件"]')
    assert bar["width"] >= 8 and bar["height"] >= 40, "a target a finger can hit"
    colour = driver.find_element(By.CSS_SELECTOR, ".timeline .bar").value_of_css_property("background-color")
    page = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert colour != page, "the bars show against the page, light or dark"
    # The results' top below the sticky header (desktop) or the folded filters (phone).
    driver.execute_script(
        "const header = document.querySelector('.site-header');"
        "const sticky = getComputedStyle(header).position === 'sticky' ? header.offsetHeight : 0;"
        "window.scrollTo(0, document.querySelector('.results-summary').getBoundingClientRect().top"
        " + window.scrollY - sticky - 8)"
    )
    name = f"timeline-{'phone' if size == PHONE else 'desktop'}-{'dark' if dark else 'light'}.png"
    assert viewport_shot(driver, name).exists()

    driver.find_element(By.CSS_SELECTOR, '.timeline a[title="2011年3月: 3 件"]').click()
    wait(driver, lambda d: "from=2011-03-01" in d.current_url and "to=2011-03-31" in d.current_url)
    assert "sort=newest" in driver.current_url and "q=%E5%8D%8A%E5%B0%8E%E4%BD%93" in driver.current_url
    dates = [time.get_attribute("datetime") for time in driver.find_elements(By.CSS_SELECTOR, ".hit time")]
    assert len(dates) == 3 and all(date.startswith("2011-03-") for date in dates), dates
    assert driver.find_element(By.ID, "from").get_attribute("value") == "2011-03-01"
    assert not driver.find_elements(By.CSS_SELECTOR, ".timeline"), "one month: no chart"


def test_the_feed_and_csv_links_carry_the_search(driver, base_url):
    from urllib.parse import parse_qs, urlsplit

    from selenium.webdriver.common.by import By

    driver.get(base_url + "/?q=半導体&category=tech&page=2")
    head = driver.find_element(By.CSS_SELECTOR, 'head link[rel="alternate"][type="application/atom+xml"]')
    href = head.get_attribute("href")
    assert urlsplit(href).path == "/feed"
    assert parse_qs(urlsplit(href).query) == {"q": ["半導体"], "category": ["tech"]}
    visible = driver.find_element(By.CSS_SELECTOR, ".results a.feed-link")
    assert visible.is_displayed() and visible.get_attribute("href") == href
    download = driver.find_element(By.CSS_SELECTOR, ".results a.csv-link")
    assert download.is_displayed() and download.text == "CSV でダウンロード"
    assert parse_qs(urlsplit(download.get_attribute("href")).query) == {"q": ["半導体"], "category": ["tech"]}
    assert viewport_shot(driver, "feed-and-csv-links.png").exists()
    fetched = driver.execute_script(
        "return fetch(arguments[0]).then(r => r.text().then(t => [r.headers.get('content-type'), t]))", href
    )
    assert fetched[0] == "application/atom+xml; charset=utf-8" and "<entry>" in fetched[1]
    assert "半導体ニュース第" in fetched[1]


# --- the people facet (issue 29) -------------------------------------------------------------


@pytest.mark.parametrize("size, dark", [(DESKTOP, False), (PHONE, True)], ids=["desktop", "phone-dark"])
def test_a_people_facet_chip_filters_to_that_person(sized, base_url, size, dark):
    """「香川」: the people facet offers 香川真司 (counted in articles); its chip filters the results
    to the articles that name him, and a chip to remove the filter appears."""
    from selenium.webdriver.common.by import By

    driver = sized
    at_size(driver, size, dark)
    driver.get(base_url + "/?q=香川")
    unfold_filters(driver)
    people = driver.find_element(By.CSS_SELECTOR, 'nav[aria-label="人物で絞り込む"]')
    chip = next(a for a in people.find_elements(By.CSS_SELECTOR, "a.chip") if a.text.startswith("香川真司"))
    count = int(chip.find_element(By.CSS_SELECTOR, ".count").text.replace(",", ""))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", people)
    name = "people-facet-" + ("phone" if size == PHONE else "desktop") + ("-dark" if dark else "")
    assert viewport_shot(driver, name + ".png").exists()
    chip.click()
    wait(driver, lambda d: "person=%E9%A6%99%E5%B7%9D%E7%9C%9F%E5%8F%B8" in d.current_url)
    summary = driver.find_element(By.CSS_SELECTOR, ".results-summary strong").text
    assert int(summary.replace(",", "")) == count, "the facet counted the articles the filter keeps"
    assert len(driver.find_elements(By.CSS_SELECTOR, ".hit")) == min(count, 10)
    unfold_filters(driver)
    assert driver.find_element(By.CSS_SELECTOR, '.active-filters a[aria-label*="香川真司"]').is_displayed()
    assert viewport_shot(driver, name + "-filtered.png").exists()


def unfold_filters(driver) -> None:
    """Open the filters panel where the page folds it (a phone), as a reader taps its summary."""
    from selenium.webdriver.common.by import By

    panel = driver.find_element(By.CSS_SELECTOR, ".filters-panel")
    if not panel.get_attribute("open"):
        panel.find_element(By.TAG_NAME, "summary").click()
