#!/usr/bin/env python3
"""A moderator's round in the console, in headless Chromium at a phone's size (Selenium driving
Debian's chromium through its chromedriver). Run by the stack's test `console_browser`, which seeds
the members, the report and the posts, and afterwards checks the feeds through the API.

    console_round.py --url http://127.0.0.1:PORT --email ADMIN --password PW --member ID
                     [--on-page N] [--screenshots DIR]

Signs in, finds the open report about member ID (following "Older reports" to page N of the list,
and checking it is on no page before), opens the member's page (their posts and images), goes
back and suspends them with a note from the report, and checks the report left the open list.
Every page must fit the phone's width (no sideways scrolling). Exits 0 on success; any failed step
raises, with the page's text.
"""
import argparse
import os
import shutil
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

PHONE = (390, 844)  # CSS pixels of a common phone


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--hide-scrollbars", f"--window-size={PHONE[0]},{PHONE[1]}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    # The system's chromedriver, named explicitly: Selenium then downloads nothing.
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver


def click_and_wait_for_the_next_page(driver, button, timeout=15):
    """Clicks a button that submits a form and waits until the browser shows the page that follows.

    The old document is marked from script; the wait ends when a document without the mark has
    finished loading. (Selenium's staleness_of asks about the clicked element, and some Chromium
    versions answer "Node with given id does not belong to the document" for a node of a page that
    has gone, an error staleness_of does not expect.)
    """
    driver.execute_script("window.__heartOldPage = true")
    button.click()
    # A script run while the page is being replaced may fail; that is "not yet", not an error.
    patient = WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,))
    patient.until(lambda d: d.execute_script(
        "return window.__heartOldPage !== true && document.readyState === 'complete'"))


def check(condition, what, driver):
    if not condition:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"{what}\n--- page {driver.current_url} ---\n{body}")


def fits_the_phone(driver, page):
    width = driver.execute_script("return document.documentElement.scrollWidth")
    inner = driver.execute_script("return window.innerWidth")
    check(width <= inner, f"{page}: {width}px wide on a {inner}px screen", driver)


def screenshot(driver, directory, name):
    if not directory:
        return
    # The whole page at the phone's width.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(PHONE[0], max(PHONE[1], min(height, 2400)))
    driver.save_screenshot(os.path.join(directory, name))
    driver.set_window_size(*PHONE)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--member", required=True, type=int)
    parser.add_argument("--on-page", type=int, default=0,
                        help="the page of the open reports (from 0) the report is on")
    parser.add_argument("--screenshots")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    driver = browser()
    wait = WebDriverWait(driver, 15)
    try:
        driver.get(f"{base}/admin/")
        wait.until(EC.presence_of_element_located((By.NAME, "email")))
        fits_the_phone(driver, "sign-in")
        screenshot(driver, args.screenshots, "console-signin.png")
        driver.find_element(By.NAME, "email").send_keys(args.email)
        driver.find_element(By.NAME, "password").send_keys(args.password)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".report, .empty")))
        check("Open reports" in driver.title or "Open reports" in driver.page_source,
              "signed in: the open reports", driver)
        # The report about the member, with a link to their page, on page --on-page of the list.
        link = f"/admin/members/{args.member}"

        def reports_about_the_member():
            return [r for r in driver.find_elements(By.CSS_SELECTOR, ".report")
                    if r.find_elements(By.CSS_SELECTOR, f"a[href='{link}']")]

        for page in range(args.on_page):
            check(not reports_about_the_member(), f"the report is not on page {page}", driver)
            shown = len(driver.find_elements(By.CSS_SELECTOR, ".report"))
            check(shown == 50, f"page {page} is full: {shown} reports", driver)
            if page == 0:
                check(not driver.find_elements(By.CSS_SELECTOR, "nav.pages a[rel=prev]"),
                      "the first page links to no newer one", driver)
            fits_the_phone(driver, f"reports, page {page}")
            older = driver.find_elements(By.CSS_SELECTOR, "nav.pages a[rel=next]")
            check(len(older) == 1, f"page {page} links to older reports", driver)
            older[0].click()
            wait.until(EC.url_contains(f"page={page + 1}"))
            wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".report, .empty")))
        if args.on_page:
            check(driver.find_elements(By.CSS_SELECTOR, "nav.pages a[rel=prev]"),
                  "a later page links back to newer reports", driver)
        reports = reports_about_the_member()
        check(len(reports) == 1, f"one open report about member {args.member}", driver)
        fits_the_phone(driver, "reports")
        screenshot(driver, args.screenshots, "console-reports.png")

        reports[0].find_element(By.CSS_SELECTOR, f"a[href='{link}']").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[name=reason]")))
        posts = driver.find_elements(By.CSS_SELECTOR, ".post .reason")
        check(len(posts) >= 1, "the member's latest posts", driver)
        images = driver.find_elements(By.CSS_SELECTOR, ".images img")
        loaded = [img for img in images if driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", img)]
        check(images and len(loaded) == len(images), "the posts' images load", driver)
        fits_the_phone(driver, "member")
        screenshot(driver, args.screenshots, "console-member.png")

        driver.back()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".report")))
        report = [r for r in driver.find_elements(By.CSS_SELECTOR, ".report")
                  if r.find_elements(By.CSS_SELECTOR, f"a[href='{link}']")][0]
        report.find_element(By.NAME, "note").send_keys("spam run, see the report")
        click_and_wait_for_the_next_page(
            driver, report.find_element(By.CSS_SELECTOR, "button[value=suspend]"))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "main h1")))
        check(not driver.find_elements(By.CSS_SELECTOR, f".report a[href='{link}']"),
              "the report left the open list", driver)

        driver.get(f"{base}{link}")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".badge.suspended")))
        check("spam run, see the report" in driver.page_source, "the note is the reason", driver)
    finally:
        driver.quit()
    print(f"console round: signed in, found the report on page {args.on_page}, suspended the member")


if __name__ == "__main__":
    sys.exit(main())
