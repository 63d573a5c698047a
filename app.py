"""ResNet Explorer: `streamlit run app.py`. The UI lives in explorer/app."""
import streamlit as st

# Streamlit runs this file as __main__. The Lab's worker processes import it again as
# __mp_main__ (multiprocessing prepares each worker from the main script's file): no page there.
if __name__ != "__mp_main__":
    st.set_page_config(page_title="ResNet Explorer", page_icon="🧱", layout="wide")

    from explorer.app import main  # set_page_config must come first

    main()
