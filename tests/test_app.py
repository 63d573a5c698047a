"""AppTest: the app runs without exceptions and shows the chosen preset."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_app_shows_summary_of_chosen_preset():
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert at.metric[0].value == "25.56 M"
    at.selectbox(key="preset").select("resnet110_skip1").run()
    assert not at.exception
    assert at.metric[2].value == "110"
