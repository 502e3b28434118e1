"""What the browser tests do to a page: wait for a condition, never for a time, and find every
element afresh on each look, because Dash draws a component again whenever a callback or an
interval refresh answers (an element found before that is stale).

Every wait shares one generous default, ``TIMEOUT``: on a busy 2-core machine a page's first
render, a worker's answer or a login can take tens of seconds, and a wait that is only as long as
it takes on an idle machine fails there (issue 21).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests import conftest

T = TypeVar("T")

TIMEOUT = 60.0  # seconds: every wait of every browser test, from this one place
POLL = 0.2  # seconds between two looks

# an element drawn again (stale), not drawn yet (missing) or still under a spinner or an overlay:
# look again
NOT_YET = (
    StaleElementReferenceException,
    NoSuchElementException,
    ElementClickInterceptedException,
    ElementNotInteractableException,
    StopIteration,
    IndexError,
)


def until(look: Callable[[], T], what: str, timeout: float = TIMEOUT, driver: Any = None) -> T:
    """The first truthy answer of ``look()``, asked again while it is falsy or the page is redrawn under
    it. On a timeout the error says what the browser was showing (when given the driver)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = look()
        except NOT_YET:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            state = f"\n{page_state(driver)}" if driver is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{state}")
        time.sleep(POLL)


def page_state(driver: Any) -> str:
    """What the page was when a wait gave up: its address, its visible text (the start), the errors
    in the browser's console and the Dash requests that failed, so a failure on a loaded machine
    can be understood from the report alone."""
    lines: list[str] = []
    try:
        lines.append(f"page: {driver.current_url} ({driver.title!r})")
        body = " ".join(driver.find_element(By.TAG_NAME, "body").text.split())
        lines.append(f"text: {body[:400]!r}")
        failed = driver.execute_script(
            "return performance.getEntriesByType('resource')"
            ".filter(e => e.responseStatus >= 400 || (e.responseStatus === 0 && e.duration > 0 && e.transferSize === 0"
            " && e.initiatorType === 'fetch'))"
            ".map(e => e.responseStatus + ' ' + e.name + ' ' + Math.round(e.duration) + 'ms').slice(-10)"
        )
        pending = driver.execute_script("return document.querySelectorAll('[data-dash-is-loading=true]').length")
        lines.append(f"failed requests: {failed}; components loading: {pending}")
        severe = [entry["message"][:300] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
        lines.append(f"console errors: {severe[-5:]}")
    except WebDriverException as err:  # the browser itself is gone: say so, keep the original failure
        lines.append(f"(the page could not be read: {type(err).__name__}: {err})")
    return "\n".join(lines)


def _done(action: Callable[[], object]) -> Callable[[], bool]:
    """``action`` as a look that answers True once it ran through."""

    def look() -> bool:
        action()
        return True

    return look


def wait_for(driver: Any, css: str, minimum: int = 1, *, text: str = "", timeout: float = TIMEOUT) -> list[Any]:
    """At least ``minimum`` elements matching css (and holding text). They may be drawn again at any
    moment: read what you need with ``text_of`` or act with the helpers below rather than keep them."""

    def look() -> list[Any]:
        found = [e for e in driver.find_elements(By.CSS_SELECTOR, css) if text in e.text]
        return found if len(found) >= minimum else []

    return until(look, f"{minimum} × {css}" + (f" holding {text!r}" if text else ""), timeout, driver)


def text_of(driver: Any, css: str, *, text: str = "", timeout: float = TIMEOUT) -> str:
    """The text of the elements matching css, read in one look once they hold text (a look the page
    redraws under is taken again)."""
    seen: list[str] = []

    def look() -> str:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        seen[:] = [" ".join(e.text for e in found) if found else f"no element matches {css}"]
        return seen[0] if found and seen[0] and text in seen[0] else ""

    try:
        return until(look, f"{css} holding {text!r}", timeout)
    except AssertionError as err:
        raise AssertionError(f"{err}; saw {seen[0] if seen else ''!r}\n{page_state(driver)}") from None


def wait_text(driver: Any, css: str, text: str, timeout: float = TIMEOUT) -> str:
    """The text of the elements matching css, once they hold text."""
    return text_of(driver, css, text=text, timeout=timeout)


def click_text(driver: Any, css: str, text: str, timeout: float = TIMEOUT) -> None:
    """Click the first element matching css whose text holds text."""
    until(
        _done(lambda: next(e for e in driver.find_elements(By.CSS_SELECTOR, css) if text in e.text).click()),
        f"{css} with {text!r} to click",
        timeout,
        driver,
    )


def click_button_of(driver: Any, css: str, text: str, label: str = "", timeout: float = TIMEOUT) -> None:
    """Press the button (labelled label, else the first one) inside the first element matching css that holds text."""
    button = f".//button[normalize-space()='{label}']" if label else ".//button"

    def press_it() -> None:
        row = next(e for e in driver.find_elements(By.CSS_SELECTOR, css) if text in e.text)
        row.find_element(By.XPATH, button).click()

    until(_done(press_it), f"a button {label!r} in {css} with {text!r}", timeout, driver)


def dispatch_click(driver: Any, css: str, index: int = 0, timeout: float = TIMEOUT) -> None:
    """Click the index-th element matching css by a DOM event (a map feature: markers drawn on top of
    it would take a real click at its centre)."""
    until(
        lambda: driver.execute_script(
            "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true})); return true;",
            driver.find_elements(By.CSS_SELECTOR, css)[index],
        ),
        f"{css} #{index} to click",
        timeout,
        driver,
    )


def hover_tooltip(driver: Any, css: str, text: str, timeout: float = TIMEOUT) -> str:
    """Hover each element matching css (a map feature) until a Leaflet tooltip holding text shows;
    the tooltip's text. Each look moves the mouse off the feature and back onto it: a mouse left
    resting where the wall redrew the feature gets no new mouseover, and the tooltip never opens."""

    seen: list[str] = []

    def look() -> str:
        elements = driver.find_elements(By.CSS_SELECTOR, css)
        seen[:] = [f"{len(elements)} × {css}"]
        for element in elements:
            ActionChains(driver).move_to_element(element).move_by_offset(40, 40).move_to_element(element).perform()
            tips = [tip.text for tip in driver.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip")]
            seen.append(f"tooltips {tips}")
            if any(text in tip for tip in tips):
                return next(tip for tip in tips if text in tip)
        return ""

    try:
        return until(look, f"a tooltip holding {text!r} over {css}", timeout, driver)
    except AssertionError as err:
        raise AssertionError(f"{err}\nlast look: {seen}") from None


def settled(driver: Any, timeout: float = TIMEOUT) -> None:
    """Wait until the map has finished moving (Leaflet's zoom and pan animations are over)."""
    until(
        lambda: not driver.find_elements(By.CSS_SELECTOR, ".leaflet-zoom-anim, .leaflet-pan-anim"),
        "the map to stop moving",
        timeout,
        driver,
    )


def press(driver: Any, label: str, timeout: float = TIMEOUT) -> None:
    """Press the button labelled label."""
    until(
        _done(lambda: driver.find_element(By.XPATH, f"//button[normalize-space()='{label}']").click()),
        f"a button {label!r} to press",
        timeout,
        driver,
    )


def type_into(driver: Any, css: str, value: str, timeout: float = TIMEOUT) -> None:
    """Make the field matching css hold value, typing it again when a redraw wiped it."""

    def look() -> bool:
        field = driver.find_element(By.CSS_SELECTOR, css)
        if field.get_attribute("value") != value:
            field.clear()
            field.send_keys(value)
        return bool(driver.find_element(By.CSS_SELECTOR, css).get_attribute("value") == value)

    until(look, f"{css} to hold {value!r}", timeout, driver)


def browser_login(driver: Any, base_url: str, username: str, password: str = conftest.DEMO_PASSWORD) -> None:
    """Sign the browser in through the login form, and wait until the login page is left."""
    conftest.browser_login(driver, base_url, username, password)
    until(lambda: "/login" not in driver.current_url, f"{username} to be signed in", driver=driver)
