"""The networks' machinery beside lib/rnn.py: the one protocol every cell follows, stacking and dropout
(cells.py), the gated cells (gru.py, lstm.py), the loops compiled (kernels.py over _kernels.c and
_typed.h) and the plain, student-style references they are checked against (reference.py)."""
