"""The web page at `/`, driven in Debian's headless Chromium against the real `rag serve`.

Selenium talks to /usr/bin/chromedriver given explicitly, so Selenium Manager never runs and
nothing is downloaded (SE_OFFLINE=true as a second guard). `make browser` installs both binaries.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.paths import SEEDS
from tests.fixtures.servers import rag_server, seeded_data_dir

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a dev extra: pip install -e '.[dev]'")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
QUESTION = "Who has led ISIS-K since 2020?"
EXPECTED_NAME = "Shahab al-Muhajir"
EXPECTED_TITLE = "Prospects for ISIS in Afghanistan"
EXPECTED_DOC = "002_2399800fba452946.txt"  # the card of `rag documents --json` over the seeds:
EXPECTED_AUTHOR = "Arkadiusz Legieć"         # one author, and a date the text states ("as of")
EXPECTED_DATE = "as of 2021"
ANSWER_TIMEOUT = 120.0  # ~55 s on 2 CPU cores (20 s to the first token), with margin

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromium-driver: run `make browser`"),
]

# Records every text the streaming answer shows, with a timestamp, so the test can tell what was on screen
# before the final answer.
RECORD_DRAFTS = """
window.__drafts = [];
new MutationObserver(function () {
  var d = document.querySelector('.answer .draft');
  var t = d ? d.textContent : null;
  var last = window.__drafts[window.__drafts.length - 1];
  if (t && (!last || last.text !== t)) { window.__drafts.push({t: performance.now(), text: t}); }
}).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
"""


# Records the body of every chat request the page sends, to see which model (collection) it asked.
RECORD_CHATS = """
window.__chats = [];
var sendFetch = window.fetch;
window.fetch = function (url, init) {
  if (String(url).indexOf('chat/completions') >= 0) { window.__chats.push(JSON.parse(init.body)); }
  return sendFetch.apply(this, arguments);
};
"""
# A second collection, uploaded through the API: its title holds markup, which the card must show as text.
NOTES_TITLE = "<b>Harbour</b> notes & <img src=x onerror=alert(1)>"
NOTES_TEXT = ("Port Alder harbour log.\n\nThe Port Alder lighthouse has been kept by Mira Okafor since 2011. "
              "The harbour freezes in hard winters.\nFishing boats leave at dawn and come back by noon.\n")


def _wait(driver: WebDriver, timeout: float = 10) -> WebDriverWait:
    return WebDriverWait(driver, timeout, poll_frequency=0.1)


@pytest.fixture(scope="module")
def web_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds ingested by the real CLI (once per session, then copied), for both page tests."""
    return seeded_data_dir(tmp_path_factory, "web")


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: WebDriver, url: str) -> None:
    driver.get(url + "/")
    _wait(driver).until(lambda d: d.find_element(By.ID, "question").is_displayed())
    assert driver.find_element(By.ID, "send").is_displayed()
    assert not driver.find_element(By.ID, "api-key").is_displayed(), "the key field shows before it is needed"
    assert not driver.find_element(By.ID, "source-panel").is_displayed()


def ask(driver: WebDriver, question: str) -> None:
    box = driver.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question)
    driver.find_element(By.ID, "send").click()


def wait_for_answer(driver: WebDriver, timeout: float = ANSWER_TIMEOUT) -> Any:
    """The last .answer once it is final (class `done`); fails with the page's error text otherwise."""
    def finished(d: WebDriver) -> Any:
        answers = d.find_elements(By.CSS_SELECTOR, ".answer")
        if not answers:
            return False
        classes = answers[-1].get_attribute("class").split()
        return answers[-1] if ("done" in classes or "failed" in classes) else False

    try:
        answer = _wait(driver, timeout).until(finished)
    except TimeoutException:
        texts = [a.text for a in driver.find_elements(By.CSS_SELECTOR, ".answer")]
        raise AssertionError(f"no final answer within {timeout:.0f}s; the page shows: {texts}") from None
    assert "failed" not in answer.get_attribute("class").split(), f"the page shows an error: {answer.text}"
    return answer


def check_citation_panel(driver: WebDriver, answer: Any) -> None:
    cites = answer.find_elements(By.CSS_SELECTOR, ".cite")
    assert cites, f"no citation buttons in the answer: {answer.get_attribute('innerHTML')}"
    cites[0].click()
    panel = _wait(driver).until(lambda d: d.find_element(By.ID, "source-panel") if d.find_element(By.ID, "source-panel").is_displayed() else False)
    quote = driver.find_element(By.ID, "source-quote").text
    assert EXPECTED_NAME in quote, f"quote of citation {cites[0].text}: {quote!r}"
    assert EXPECTED_TITLE in panel.text, panel.text


@pytest.mark.llm
def test_page_streams_a_verified_answer_with_clickable_citations(
        web_data_dir: Path, model_path: Path, browser: WebDriver, tmp_path: Path) -> None:
    with rag_server(web_data_dir, env={"RAG_LLM_MODEL_PATH": str(model_path)}) as url:
        open_page(browser, url)
        browser.execute_script(RECORD_DRAFTS)
        ask(browser, QUESTION)
        _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".answer"))
        assert "Thinking" in browser.find_element(By.CSS_SELECTOR, ".answer").text or \
            browser.find_elements(By.CSS_SELECTOR, ".answer .draft"), "no waiting state while the answer is prepared"
        started = time.monotonic()
        answer = wait_for_answer(browser)
        took = time.monotonic() - started

        text = answer.find_element(By.CSS_SELECTOR, ".answer-body").text
        assert EXPECTED_NAME in text, text
        assert "Verified answer:" not in text, "the final answer did not replace the streamed text"
        assert answer.find_elements(By.CSS_SELECTOR, ".sources .source-item"), "no source list under the answer"

        drafts = browser.execute_script("return window.__drafts")
        print(f"\nanswer after {took:.1f}s; {len(drafts)} streamed states before the final answer")
        # The page streams verified sentences only (issue 12): every state it showed is a prefix of the final
        # answer, so no sentence the verifier dropped was ever on screen.
        assert drafts, "nothing was streamed before the final answer"
        final = " ".join(text.split())
        assert all(final.startswith(" ".join(d["text"].split()).rstrip()) for d in drafts), \
            f"the page showed text that is not in the verified answer: {json.dumps(drafts)[:500]}"

        check_citation_panel(browser, answer)
        shot = tmp_path / "web-page.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")

        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe


def test_page_asks_for_the_api_key_after_a_401_and_retries(
        web_data_dir: Path, browser: WebDriver, tmp_path: Path) -> None:
    env = {"RAG_API_KEY": "secret", "RAG_LLM_BACKEND": "extractive"}
    with rag_server(web_data_dir, env=env) as url:
        open_page(browser, url)
        ask(browser, QUESTION)
        key_field = _wait(browser, 30).until(lambda d: d.find_element(By.ID, "api-key") if d.find_element(By.ID, "api-key").is_displayed() else False)
        assert "done" not in browser.find_element(By.CSS_SELECTOR, ".answer").get_attribute("class")

        # A wrong key is rejected and the field comes back.
        key_field.send_keys("wrong", Keys.ENTER)
        _wait(browser, 30).until(lambda d: d.find_element(By.ID, "api-key").is_displayed()
                                 and "not accepted" in d.find_element(By.ID, "auth-box").text)

        key_field = browser.find_element(By.ID, "api-key")
        key_field.send_keys("secret", Keys.ENTER)
        answer = wait_for_answer(browser, 60)
        assert EXPECTED_NAME in answer.text, answer.text
        assert not browser.find_element(By.ID, "api-key").is_displayed()
        assert browser.execute_script("return localStorage.getItem('rag.apiKey')") == "secret"
        assert len(browser.find_elements(By.CSS_SELECTOR, ".answer")) == 1, "the retried question was duplicated"
        browser.save_screenshot(str(tmp_path / "web-page-auth.png"))


def open_card(driver: WebDriver, answer: Any, n: int) -> Any:
    """Click citation [n] in the answer; the source panel once the document card has been filled in."""
    answer.find_element(By.CSS_SELECTOR, f'.cite[data-n="{n}"]').click()
    _wait(driver).until(lambda d: d.find_element(By.ID, "source-panel").is_displayed()
                        and d.find_element(By.ID, "source-authors").text not in ("", "…"))
    return driver.find_element(By.ID, "source-panel")


def test_page_answers_from_the_picked_collection_and_shows_the_cited_passage_in_its_card(
        web_data_dir: Path, browser: WebDriver, tmp_path: Path) -> None:
    with rag_server(web_data_dir, env={"RAG_LLM_BACKEND": "extractive"}) as url:
        up = httpx.post(f"{url}/v1/documents", files={"file": ("harbour.txt", NOTES_TEXT.encode())},
                        data={"collection": "notes", "title": NOTES_TITLE, "author": "Ada Lind"}, timeout=120)
        assert up.status_code == 201, up.text
        # What the API cites, to compare the page with.
        reply = httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
            "model": "rag:rag", "messages": [{"role": "user", "content": QUESTION}]}).json()
        cited = next(s for s in reply["sources"] if s["n"] == 1)
        assert cited["doc_id"] == EXPECTED_DOC, reply

        open_page(browser, url)
        _wait(browser).until(lambda d: len(Select(d.find_element(By.ID, "collection")).options) == 2)
        picker = Select(browser.find_element(By.ID, "collection"))
        assert [o.get_attribute("value") for o in picker.options] == ["rag:rag", "rag:notes"]
        assert picker.first_selected_option.get_attribute("value") == "rag:rag"  # the server's collection first
        assert browser.find_element(By.ID, "collection").is_enabled()
        browser.execute_script(RECORD_CHATS)

        ask(browser, QUESTION)
        answer = wait_for_answer(browser, 60)
        assert EXPECTED_NAME in answer.text, answer.text
        assert browser.execute_script("return window.__chats.map(function (b) { return b.model; })") == ["rag:rag"]

        panel = open_card(browser, answer, 1)
        assert browser.find_element(By.ID, "source-title").text == EXPECTED_TITLE
        assert browser.find_element(By.ID, "source-authors").text == EXPECTED_AUTHOR
        assert browser.find_element(By.ID, "source-date").text == EXPECTED_DATE
        assert browser.find_element(By.ID, "source-path").text == EXPECTED_DOC  # the file name, no folder
        mark = browser.find_element(By.CSS_SELECTOR, "#source-passage mark#source-quote")
        passage = " ".join(browser.find_element(By.ID, "source-passage").text.split())
        quote = " ".join(mark.text.split())
        assert quote == cited["quote"] and EXPECTED_NAME in quote
        assert len(passage) > len(quote) and quote in passage, passage  # the sentence inside its passage
        assert str(SEEDS) not in panel.text, panel.text  # the folder it was ingested from shows nowhere
        shot = tmp_path / "web-page-card.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")

        # The other collection: the request names it, and the answer and its card come from it.
        picker.select_by_value("rag:notes")
        ask(browser, "Who keeps the Port Alder lighthouse?")
        answer = wait_for_answer(browser, 60)
        assert "Mira Okafor" in answer.text, answer.text
        assert browser.execute_script("return window.__chats.map(function (b) { return b.model; })") == ["rag:rag", "rag:notes"]
        panel = open_card(browser, answer, 1)
        assert browser.find_element(By.ID, "source-title").text == NOTES_TITLE  # shown as text, not markup
        assert not panel.find_elements(By.CSS_SELECTOR, "b, img"), panel.get_attribute("innerHTML")
        assert browser.find_element(By.ID, "source-authors").text == "Ada Lind"
        assert "Mira Okafor" in browser.find_element(By.ID, "source-quote").text

        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
