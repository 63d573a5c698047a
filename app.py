"""ResNet Explorer: `streamlit run app.py`. The UI lives in explorer/app."""
import streamlit as st

st.set_page_config(page_title="ResNet Explorer", page_icon="🧱", layout="wide")

from explorer.app import main  # noqa: E402  (set_page_config must come first)

main()
