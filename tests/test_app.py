"""AppTest: the app runs without exceptions and shows the chosen preset."""
from streamlit.testing.v1 import AppTest


def test_app_shows_summary_of_chosen_preset():
    at = AppTest.from_file("app.py", default_timeout=120).run()
    assert not at.exception
    assert at.metric[0].value == "25.56 M"
    at.selectbox(key="preset").select("resnet110_skip1").run()
    assert not at.exception
    assert at.metric[2].value == "110"
