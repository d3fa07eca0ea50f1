"""`waza report`: the analysis as one self-contained HTML page with charts and session timelines."""
