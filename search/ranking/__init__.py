"""Stage 4b, ranking: the array evaluator that scores whole posting lists at once
(`scoring.py`), and the learned model that reorders its best sections (`rerank.py`)."""
