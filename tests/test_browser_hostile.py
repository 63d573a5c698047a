"""Real-browser checks of hostile input: a huge number in an uploaded config, Markdown in a link,
a repeated and several bad link parameters, and a measurement far over its budget or cancelled.
Every page must stay a working page (no Streamlit exception) and say what was wrong."""
import re
from urllib.parse import quote, urlparse

from browser_util import EXCEPTION, MAIN, key_css, settle

ALERT = '[data-testid="stAlert"]'


def page_at(new_page, url: str):
    pg = new_page()
    pg.goto(url)
    settle(pg)
    return pg


def alerts(pg) -> str:
    return "\n".join(pg.locator(ALERT).all_inner_texts())


def test_upload_with_a_5000_digit_integer_is_one_clear_error(new_page, app_url, tmp_path):
    pg = page_at(new_page, app_url + "?preset=resnet20")
    path = tmp_path / "huge.json"
    path.write_bytes(b'{"skip_span": ' + b"9" * 5000 + b"}")
    pg.get_by_text("Import / export config").click()
    pg.locator(f'{key_css("upload_config")} input[type="file"]').set_input_files(str(path))
    pg.wait_for_selector(f'{ALERT}:has-text("4300 digits")', timeout=60_000)
    settle(pg)
    assert pg.locator(EXCEPTION).count() == 0
    assert "huge.json" in alerts(pg)


def test_markdown_in_a_link_is_shown_as_text(new_page, app_url):
    requested = []
    pg = new_page()
    pg.on("request", lambda r: requested.append(r.url))
    link = "[Your session expired - sign in again](https://evil.example/login)"
    pg.goto(f"{app_url}?preset=resnet20&depths={quote(link)}&widths={quote('![x](' + app_url + '/pixel.png)')}")
    settle(pg)
    assert pg.locator(EXCEPTION).count() == 0
    text = alerts(pg).replace("\u2060", "")  # the invisible word joiner that stops autolinks
    assert "Your session expired" in text and "https://evil.example/login" in text  # shown, as text
    assert pg.locator('a[href*="evil.example"]').count() == 0
    assert pg.locator(f'{MAIN} img[src*="pixel.png"]').count() == 0
    assert not any(urlparse(url).path.endswith("pixel.png") for url in requested)  # never fetched


def test_each_bad_or_repeated_link_parameter_is_named(new_page, app_url):
    pg = page_at(new_page, app_url + "?preset=resnet20&depths=[1,1,1]&depths=[2,2,2]&widths=x&shortcut=Z")
    assert pg.locator(EXCEPTION).count() == 0
    text = alerts(pg)
    assert "depths is given 2 times" in text
    assert "widths='x' is invalid" in text and "shortcut='Z' is invalid" in text


def test_a_measurement_far_over_its_budget_is_refused_at_once(new_page, app_url):
    pg = page_at(new_page, app_url + "?preset=resnet50&input_size=4096&view=Latency")
    pg.locator(f"{key_css('lat_run')} button").click()
    pg.wait_for_selector(f'{ALERT}:has-text("far over")', timeout=30_000)
    settle(pg, timeout_ms=30_000)
    assert pg.locator(EXCEPTION).count() == 0
    assert re.search(r"takes about \d+ s or more, far over this measurement's 3 s budget", alerts(pg))


def test_a_measurement_can_be_cancelled(new_page, app_url):
    pg = page_at(new_page, app_url + "?preset=resnet152&view=Latency")
    pg.locator(f"{key_css('lat_run')} button").click()
    cancel = pg.locator(f"{key_css('lat_cancel')} button").first
    cancel.wait_for(timeout=30_000)
    cancel.click()
    pg.wait_for_selector(f'{ALERT}:has-text("was cancelled")', timeout=30_000)
    settle(pg)
    assert pg.locator(EXCEPTION).count() == 0
    assert pg.locator('[data-testid="stMetricValue"]').count() == 0  # no result: it was stopped


def test_closing_the_page_stops_its_measurement(new_page, app_url, tmp_path_factory):
    """A batch sweep (a 20 s budget) of a page that goes away is stopped within seconds and kept
    as cancelled in the server's run store."""
    import time

    from explorer.runs import RunStore

    folder = next(tmp_path_factory.getbasetemp().glob("app_server*"))  # the shared server's store
    pg = page_at(new_page, app_url + "?preset=resnet152&view=Latency")
    pg.locator(f"{key_css('lat_sweep')} button").click()
    pg.wait_for_selector('[data-testid="stProgress"]', timeout=30_000)
    time.sleep(1.0)  # under way
    closed = time.monotonic()
    pg.close()
    sweeps = []
    while time.monotonic() - closed < 12:
        sweeps = [r for r in RunStore(folder / "runs.sqlite").list(kind="sweep") if r.name == "resnet152"]
        if sweeps:
            break
        time.sleep(0.25)
    assert sweeps and sweeps[0].status == "cancelled", [(r.status, r.message) for r in sweeps]
    assert time.monotonic() - closed < 12  # long before the sweep's own 20 s budget ran out
